"""Unit tests of firmware-image/setup/keel_setup.py: the ovf-env.xml parser,
validation, the files first boot writes, and the wizard driven through a
pseudo-terminal pair. Nothing here needs an appliance or root."""
import json
import os
import pty
import subprocess
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "setup"))
import keel_setup as ks  # noqa: E402

SAMPLES = os.path.join(HERE, "ovf-env")


def sample(name):
    with open(os.path.join(SAMPLES, name), encoding="utf-8") as f:
        return ks.normalise(ks.parse_ovf_env(f.read()))


class OvfEnv(unittest.TestCase):
    def test_static_softhsm(self):
        a = sample("static-softhsm.xml")
        self.assertEqual(ks.validate(a), [])
        self.assertEqual(a["hostname"], "kms1.example.com")  # lower-cased
        self.assertEqual(a["ip"], "10.20.30.40/24")
        self.assertEqual(a["token_pin"], "correct horse")  # secrets kept as given
        self.assertNotIn("pkcs11_module", a)  # not asked with the built-in token
        self.assertNotIn("crk_key", a)

    def test_dhcp_pkcs11_import(self):
        a = sample("dhcp-pkcs11-import.xml")
        self.assertEqual(ks.validate(a), [])
        self.assertEqual(a["ip"], "")
        self.assertEqual(a["pkcs11_module"], "/opt/hsm/lib/libhsm-pkcs11.so")
        self.assertNotIn("so_pin", a)  # an HSM's token exists already
        self.assertEqual(len(bytes.fromhex(a["crk_key"])), 32)

    def test_invalid_is_refused_field_by_field(self):
        errors = dict(ks.validate(sample("invalid.xml")))
        self.assertEqual(set(errors), {"hostname", "ip", "dns", "hsm", "token_pin",
                                       "enrolment_code"})
        self.assertIn("prefix", ks.check_field("ip", "10.0.0.5", {}))
        self.assertIn("PIN must be", errors["token_pin"])

    def test_not_an_environment(self):
        with self.assertRaisesRegex(ValueError, "well-formed"):
            ks.parse_ovf_env("<Environment")
        with self.assertRaisesRegex(ValueError, "no OVF Environment"):
            ks.parse_ovf_env("<Envelope/>")

    def test_check_env_command(self):
        cmd = [sys.executable, os.path.join(HERE, "..", "setup", "keel-setup"), "check-env"]
        ok = subprocess.run(cmd + [os.path.join(SAMPLES, "static-softhsm.xml")],
                            capture_output=True, text=True)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        shown = json.loads(ok.stdout)["settings"]
        self.assertIs(shown["token_pin"], True)  # never the secret itself
        self.assertNotIn("correct horse", ok.stdout)
        bad = subprocess.run(cmd + [os.path.join(SAMPLES, "invalid.xml")],
                             capture_output=True, text=True)
        self.assertEqual(bad.returncode, ks.EX_DATAERR)


class Validation(unittest.TestCase):
    def test_gateway(self):
        a = {"ip": "192.168.1.10/24"}
        self.assertIsNone(ks.check_field("gateway", "192.168.1.1", a))
        self.assertIn("not in", ks.check_field("gateway", "192.168.2.1", a))
        self.assertIn("needs a default gateway", ks.check_field("gateway", "", a))
        self.assertIn("needs a static", ks.check_field("gateway", "10.0.0.1", {"ip": ""}))

    def test_addresses(self):
        self.assertIn("network's own", ks.check_field("ip", "10.0.0.0/24", {}))
        self.assertIsNone(ks.check_field("ip", "fd00::5/64", {}))
        self.assertIsNone(ks.check_field("ip", "10.0.0.5/32", {}))

    def test_names(self):
        self.assertIsNone(ks.check_field("hostname", "a-b.c", {}))
        for bad in ("-a", "a-", "a..b", "a" * 64, "x_y", ""):
            self.assertIsNotNone(ks.check_field("hostname", bad, {}), bad)
        self.assertIsNotNone(ks.check_field("ntp", "pool.ntp.org, b@d", {}))

    def test_secrets_and_module(self):
        self.assertIsNone(ks.check_field("token_pin", "12345678", {}))
        self.assertIsNotNone(ks.check_field("token_pin", "1234567", {}))
        self.assertIsNotNone(ks.check_field("crk_key", "00" * 31, {}))
        self.assertIsNotNone(ks.check_field("pkcs11_module", "libx.so", {}))
        self.assertIsNotNone(ks.check_field("token_label", "x" * 33, {}))

    def test_admin_cert(self):
        pem = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n"
               "-----END CERTIFICATE-----")
        import base64
        self.assertIsNone(ks.check_field("admin_cert", pem, {}))
        self.assertIsNone(ks.check_field("admin_cert", base64.b64encode(pem.encode()).decode(), {}))
        self.assertIsNotNone(ks.check_field("admin_cert", "hello", {}))


class Files(unittest.TestCase):
    def test_network_static(self):
        text = ks.network_unit(sample("static-softhsm.xml"))
        self.assertIn("Address=10.20.30.40/24\nGateway=10.20.30.1\n", text)
        self.assertIn("DNS=10.20.30.2\nDNS=10.20.30.3\n", text)
        self.assertNotIn("DHCP", text)

    def test_network_dhcp(self):
        text = ks.network_unit(sample("dhcp-pkcs11-import.xml"))
        self.assertIn("DHCP=yes", text)
        self.assertIn("ClientIdentifier=mac", text)

    def test_time(self):
        self.assertIn("NTP=ntp1.example.com 10.20.30.4\n",
                      ks.timesyncd_conf(sample("static-softhsm.xml")))

    def test_keeld_conf_names_the_credential_never_the_pin(self):
        a = sample("static-softhsm.xml")
        conf = ks.keeld_conf(a)
        self.assertIn(f'pin_file = "{ks.CRED_PIN}"', conf)
        self.assertNotIn(a["token_pin"], conf)
        self.assertIn('module = "softhsm2"', conf)
        # The key process as keel, the network process as keel-net (keel.sysusers).
        self.assertIn('\nuser = "keel";', conf)
        self.assertRegex(conf, r'privsep:\s*\{\s*user = "keel-net";\s*\};')
        self.assertIn('module = "/opt/hsm/lib/libhsm-pkcs11.so"',
                      ks.keeld_conf(sample("dhcp-pkcs11-import.xml")))

    def test_first_admin_reaches_keeld(self):
        """First boot hands keeld the first administrator: an enrolment code as
        the verifier api_enrol.c checks (never the code), or a certificate."""
        import hashlib
        import tempfile
        import time
        from unittest import mock

        a = sample("static-softhsm.xml")
        with tempfile.TemporaryDirectory() as d, \
                mock.patch.object(ks, "ENROL_FILE_REAL", d + "/admin-enrolment"), \
                mock.patch.object(ks, "ADMINS_DIR_REAL", d + "/admins"):
            a["admin_cert"], a["enrolment_code"] = "", ""
            code = ks.setup_admin(a, 1000)  # generated, shown once on the console
            self.assertRegex(code, r"^([0-9a-f]{6}-){3}[0-9a-f]{6}$")
            with open(d + "/admin-enrolment") as f:
                verifier, expires = f.read().split()
            self.assertEqual(os.stat(d + "/admin-enrolment").st_mode & 0o777, 0o640)
            self.assertEqual(int(expires), 1000 + 7 * 86400)
            kind, iterations, salt, digest = verifier.split("$")
            self.assertEqual(kind, "pbkdf2-sha256")
            self.assertEqual(hashlib.pbkdf2_hmac("sha256", code.encode(), bytes.fromhex(salt),
                                                 int(iterations)).hex(), digest)
            self.assertNotEqual(ks.enrolment_verifier(code), verifier)  # salted
            conf = ks.keeld_conf(a)
            self.assertIn(f'enrolment_file = "{ks.ENROL_FILE}";', conf)
            self.assertNotIn("certificates_dir = \"/etc/keel/admins\"", conf)
            self.assertIn(f'ca_key = "{ks.CA_KEY}";', conf)  # keeld signs the enrolment
            a["enrolment_code"] = "chosen-by-the-admin"
            self.assertIsNone(ks.setup_admin(a, time.time()))  # a chosen code is not shown
            pem = ("-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n"
                   "-----END CERTIFICATE-----")
            a["admin_cert"] = pem
            self.assertIsNone(ks.setup_admin(a, time.time()))
            with open(d + "/admins/initial-admin.pem") as f:
                self.assertEqual(f.read(), pem + "\n")
            conf = ks.keeld_conf(a)
            self.assertIn(f'certificates_dir = "{ks.ADMINS_DIR}";', conf)
            self.assertNotIn("enrolment_file", conf)

    def test_moved_dhcp_address_is_noticed(self):
        self.assertEqual(ks.unnamed_addresses(["10.0.0.5", "fd00::5"],
                                              ["10.0.0.5", "FD00:0:0:0:0:0:0:5"]), [])
        self.assertEqual(ks.unnamed_addresses(["10.0.0.9", "fd00::5"], ["10.0.0.5", "fd00::5"]),
                         ["10.0.0.9"])

    def test_token_pin_rotation(self):
        """Console menu 5: keeld stopped, the new PIN encrypted before the token
        takes it, the credential replaced after, keeld started; no PIN on a
        command line; a refused PIN leaves the old credential."""
        import tempfile
        from unittest import mock

        with tempfile.TemporaryDirectory() as d:
            os.makedirs(d + "/keel")
            with open(d + "/keel/keeld.conf", "w") as f:
                f.write(ks.keeld_conf(sample("static-softhsm.xml")))
            with open(d + "/keel/hsm.pin.cred", "w") as f:
                f.write("old credential")
            calls = []

            def fake_run(argv, check=True, **kw):
                calls.append(argv)
                if argv[:2] == [ks.KEEL_CREDS, "encrypt"]:
                    with open(argv[3], "w") as f:
                        f.write("new credential")
                if argv[:3] == ["keelctl", "hsm", "change-pin"] and fail:
                    raise subprocess.CalledProcessError(77, argv, "", "refused")
                return subprocess.CompletedProcess(argv, 0, "", "")

            with mock.patch.object(ks, "ETC_KEEL", d + "/keel"), \
                    mock.patch.object(ks, "RUN", d + "/run"), \
                    mock.patch.object(ks, "run", fake_run), \
                    mock.patch.object(ks.subprocess, "run", fake_run):
                fail = True
                with self.assertRaises(subprocess.CalledProcessError):
                    ks.change_token_pin("rotated PIN 1234")
                with open(d + "/keel/hsm.pin.cred") as f:
                    self.assertEqual(f.read(), "old credential")
                self.assertEqual(calls[-1], ["systemctl", "start", "keeld.service"])
                calls.clear()
                fail = False
                ks.change_token_pin("rotated PIN 1234")
            with open(d + "/keel/hsm.pin.cred") as f:
                self.assertEqual(f.read(), "new credential")
            self.assertEqual(os.listdir(d + "/run"), [])  # no PIN left behind
            steps = [" ".join(c[:3]) if c[0] != ks.KEEL_CREDS else c[1] for c in calls]
            self.assertEqual(steps, ["systemctl stop keeld.service", "decrypt", "encrypt",
                                     "keelctl hsm change-pin", "systemctl start keeld.service"])
            change = calls[3]
            self.assertEqual(change[change.index("--token") + 1], "keel")
            self.assertNotIn("rotated PIN 1234", " ".join(" ".join(c) for c in calls))

    def test_server_sans(self):
        self.assertEqual(ks.server_sans("kms1.example.com", ["10.0.0.5", "fd00::5"]),
                         "DNS:kms1.example.com,DNS:kms1,IP:10.0.0.5,IP:fd00::5")

    def test_ovf_properties_cover_every_field(self):
        """make-ova asks vCenter for each field the parser reads."""
        vmdk = os.path.join(HERE, "ovf-env", "invalid.xml")  # any file: only its size is read
        out = subprocess.run([sys.executable, os.path.join(HERE, "..", "lib", "make-ova"),
                              "--ovf-only", "--name", "keel-t", "--version", "t",
                              "--capacity", "1", "--vmdk", vmdk, "--out", "/dev/stdout"],
                             capture_output=True, text=True, check=True).stdout
        for f in ks.FIELDS:
            self.assertIn(f'ovf:key="keel.{f.key}"', out)
        self.assertEqual(out.count('ovf:password="true"'), sum(f.secret for f in ks.FIELDS))


class Wizard(unittest.TestCase):
    """The wizard through a real pseudo-terminal: bad answers are refused with
    a message and asked again; the summary shows no secret."""

    def drive(self, lines):
        master, slave = pty.openpty()
        con = ks.Consoles([(os.fdopen(slave, "r", buffering=1),
                            os.fdopen(os.dup(slave), "w", buffering=1))])
        result = {}
        t = threading.Thread(target=lambda: result.update(ks.wizard(con)), daemon=True)
        t.start()
        out = b""
        for line in lines:
            new = b""  # output since the last answer: the next prompt ends it
            while not new.endswith(b": "):
                chunk = os.read(master, 4096)
                out += chunk
                new += chunk
            os.write(master, line.encode() + b"\n")
        t.join(timeout=30)
        self.assertFalse(t.is_alive(), out.decode(errors="replace")[-500:])
        while True:
            import select
            r, _, _ = select.select([master], [], [], 0)
            if not r:
                break
            out += os.read(master, 4096)
        os.close(master)
        return result, out.decode(errors="replace")

    def test_bad_then_good(self):
        answers, out = self.drive([
            "kms3", "10.0.0.300/24", "10.0.0.7/24", "10.0.0.1", "10.0.0.2", "",
            "softhsm", "", "short", "short", "longenough1", "longenough1",
            "so-pin-12345", "so-pin-12345", "create", "", "", "yes"])
        self.assertIn("is not an IP address with prefix length", out)
        self.assertIn("PIN must be 8-255 characters long", out)
        self.assertNotIn("longenough1", out)  # echo off, summary hides it
        self.assertEqual(answers["ip"], "10.0.0.7/24")
        self.assertEqual(answers["token_pin"], "longenough1")
        self.assertEqual(ks.validate(answers), [])


if __name__ == "__main__":
    unittest.main()
