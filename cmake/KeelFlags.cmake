# Compiler flags shared by every target: warnings (as errors) and hardening,
# per ../shared/STYLE.md. Sanitizer and fuzzer builds swap the hardening that
# fights them (FORTIFY) for their own instrumentation.

add_compile_definitions(_GNU_SOURCE)
add_compile_options(
	-Wall -Wextra -Wshadow -Wformat=2 -Wvla -Wimplicit-fallthrough
	-Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
	-fstack-protector-strong -fstack-clash-protection
)
if(KEEL_WERROR)
	add_compile_options(-Werror)
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_link_options(-pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack)
add_compile_options(-fPIE)

if(KEEL_TSAN AND (KEEL_SANITIZE OR KEEL_FUZZ OR KEEL_HSM_TSAN))
	message(FATAL_ERROR "KEEL_TSAN builds everything under ThreadSanitizer: no other sanitizer")
endif()

if(KEEL_TSAN)
	set(keel_san -fsanitize=thread -fno-omit-frame-pointer)
	add_compile_options(${keel_san})
	add_link_options(${keel_san})
elseif(KEEL_SANITIZE OR KEEL_FUZZ)
	set(keel_san -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
	add_compile_options(${keel_san})
	add_link_options(${keel_san})
else()
	# FORTIFY needs optimisation; without it glibc warns, and -Werror stops the build.
	add_compile_options($<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE> $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=3>)
endif()

if(KEEL_FUZZ)
	if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
		message(FATAL_ERROR "KEEL_FUZZ needs clang: configure with CC=clang")
	endif()
	# Coverage instrumentation everywhere; only the harnesses link libFuzzer's main.
	add_compile_options(-fsanitize=fuzzer-no-link)
endif()
