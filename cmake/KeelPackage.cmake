# The keel .deb (CPack): keeld, keelctl, keeld.service with its user and state
# directory, and the documented configuration example. `cpack` in the build
# directory writes keel_<version>_<arch>.deb; firmware-image/build installs it.
set(KEEL_SYSTEMD_DIR appliance/systemd)
install(FILES ${KEEL_SYSTEMD_DIR}/keeld.service DESTINATION lib/systemd/system COMPONENT keel)
install(FILES ${KEEL_SYSTEMD_DIR}/keel.sysusers DESTINATION lib/sysusers.d RENAME keel.conf
	COMPONENT keel)
install(FILES ${KEEL_SYSTEMD_DIR}/keel.tmpfiles DESTINATION lib/tmpfiles.d RENAME keel.conf
	COMPONENT keel)
install(FILES appliance/keeld.conf.example DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT keel)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME keel)
set(CPACK_PACKAGE_VENDOR Keel)
set(CPACK_PACKAGE_CONTACT "Keel <keel@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL keel)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "p11-kit, systemd (>= 252)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS softhsm2)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_SOURCE_DIR}/cmake/deb/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
