"""Keel appliance setup: first boot, the console wizard and the console menu.

One module so that the OVF properties (make-ova), the parser of ovf-env.xml,
the wizard's questions and their validation cannot drift apart: FIELDS is
the single list of what an appliance is asked. keel-setup is the command;
tests/test_setup.py tests everything here that needs no appliance.

First boot runs in two parts (keel-firstboot.service, keel-finish.service):
`answers` (before the network) gets the answers from ovf-env.xml or the
wizard, writes hostname, network and time settings, and keeps the secrets in
/run only; `finish` (network up) initialises the token and CRK, issues the
CA and the server certificate with the appliance's names and addresses,
encrypts the PIN with systemd-creds and writes keeld.conf. Bootstrap
secrets are used once and never written to disk in clear.
"""

import hashlib
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import sys
import termios
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass

CONFIG = "/var/lib/keel-config"  # /etc/keel, hostname, network link here
ETC_KEEL = CONFIG + "/keel"
DONE = CONFIG + "/firstboot.done"
RUN = "/run/keel-setup"  # tmpfs: the answers between the two parts
STATE = "/var/lib/keel"  # keeld's own: token, store
KMIP_PORT = 5696
ADMIN_PORT = 8443
PIN_CRED = "/etc/keel/hsm.pin.cred"
KEEL_CREDS = "/usr/lib/keel/keel-creds"
CRED_PIN = "/run/keel/hsm.pin"  # what keeld reads: keeld.service decrypts PIN_CRED there
ADMINS_DIR = "/etc/keel/admins"  # admin.certificates_dir: the first administrator's certificate
ENROL_FILE = "/etc/keel/admin-enrolment"  # admin.enrolment_file: the code's verifier
ENROL_DAYS = 7  # a one-time enrolment code expires after
ENROL_ITERATIONS = 200000  # PBKDF2-HMAC-SHA-256 (appliance/admin/api_enrol.c)
CA_KEY = CONFIG + "/ca/ca.key"  # root:keel 0640: keeld signs with it (pki.ca_key)
# The same two through the /etc/keel link, as first boot writes them (ETC_KEEL).
ADMINS_DIR_REAL = ETC_KEEL + "/admins"
ENROL_FILE_REAL = ETC_KEEL + "/admin-enrolment"
OVF_ENV_NS = "http://schemas.dmtf.org/ovf/environment/1"
FW_CFG = "/sys/firmware/qemu_fw_cfg/by_name/opt/keel/ovf-env.xml/raw"

EX_USAGE, EX_DATAERR, EX_SOFTWARE, EX_CONFIG = 64, 65, 70, 78


@dataclass(frozen=True)
class Field:
    key: str  # answers[key]; the OVF property is "keel." + key
    label: str  # the question and the vCenter label
    help: str  # the vCenter description and the wizard's hint
    secret: bool = False
    choices: tuple = ()
    default: str = ""
    when: tuple = ()  # (other key, value): asked only then


FIELDS = (
    Field("hostname", "Host name", "The appliance's host name (a DNS name, e.g. kms1.example.com).",
          default="keel"),
    Field("ip", "IP address", "Static IPv4 or IPv6 address with prefix length (10.0.0.5/24); "
          "empty for DHCP."),
    Field("gateway", "Default gateway", "The default gateway of a static address."),
    Field("dns", "DNS servers", "DNS server addresses, separated by commas (optional with DHCP)."),
    Field("ntp", "NTP servers", "NTP server names or addresses, separated by commas "
          "(certificates depend on the time)."),
    Field("hsm", "HSM", "softhsm: the built-in SoftHSM2 token; pkcs11: an HSM's PKCS#11 module.",
          choices=("softhsm", "pkcs11"), default="softhsm"),
    Field("pkcs11_module", "PKCS#11 module", "Absolute path of the HSM's PKCS#11 library.",
          when=("hsm", "pkcs11")),
    Field("token_label", "Token label", "The label of the token that holds the root key.",
          default="keel"),
    Field("token_pin", "Token PIN", "The token's user PIN (8 characters or more).", secret=True),
    Field("so_pin", "Token SO PIN", "The built-in token's security officer PIN (8 characters or "
          "more).", secret=True, when=("hsm", "softhsm")),
    Field("crk", "Customer root key", "create: a new root key in the token; import: 32 bytes "
          "of existing key material (BYOK).", choices=("create", "import"), default="create"),
    Field("crk_key", "Root key material", "The imported root key: 64 hexadecimal digits.",
          secret=True, when=("crk", "import")),
    Field("admin_cert", "Admin certificate", "The first administrator's certificate (PEM, or its "
          "base64 on one line); empty: use an enrolment code."),
    Field("enrolment_code", "Admin enrolment code", "A one-time code for the first administrator "
          "(12 characters or more); empty: one is generated and shown on the console.",
          secret=True),
)
BY_KEY = {f.key: f for f in FIELDS}

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
NTP_NAME_RE = HOSTNAME_RE
LABEL_MAX = 32
PIN_MIN, PIN_MAX = 8, 255
CODE_MIN = 12


def asked(field, answers):
    """Whether |field| applies, given the answers so far."""
    return not field.when or answers.get(field.when[0], BY_KEY[field.when[0]].default) == field.when[1]


def split_list(text):
    return [x for x in re.split(r"[,\s]+", text.strip()) if x]


def check_field(key, value, answers):
    """The error message for answers[key] = |value|, or None when it is valid.
    |answers| gives the context (DHCP or static, which HSM)."""
    f = BY_KEY[key]
    if f.choices and value not in f.choices:
        return f"{f.label} must be one of: {', '.join(f.choices)}"
    check = _CHECKS.get(key)
    return check(value, answers) if check else None


def _check_hostname(value, answers):
    if not HOSTNAME_RE.match(value):
        return "Host name must be a DNS name: letters, digits, '-' and '.', labels of 1-63"
    return None


def _check_ip(value, answers):
    if value == "":
        return None
    if "/" not in value:
        return "IP address needs a prefix length, e.g. 10.0.0.5/24 (empty for DHCP)"
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        return f"'{value}' is not an IP address with prefix length"
    net = iface.network
    if net.num_addresses > 2 and iface.ip in (net.network_address, net.broadcast_address):
        return f"{iface.ip} is the network's own address, not a host address"
    return None


def _check_gateway(value, answers):
    ip = answers.get("ip", "")
    if ip == "" or _check_ip(ip, answers):
        return None if value == "" else "A gateway needs a static IP address"
    if value == "":
        return "A static IP address needs a default gateway"
    try:
        gw = ipaddress.ip_address(value)
    except ValueError:
        return f"'{value}' is not an IP address"
    if gw not in ipaddress.ip_interface(ip).network:
        return f"Gateway {gw} is not in {ipaddress.ip_interface(ip).network}"
    return None


def _check_dns(value, answers):
    for x in split_list(value):
        try:
            ipaddress.ip_address(x)
        except ValueError:
            return f"DNS server '{x}' is not an IP address"
    return None


def _check_ntp(value, answers):
    for x in split_list(value):
        try:
            ipaddress.ip_address(x)
        except ValueError:
            if not NTP_NAME_RE.match(x.lower()):
                return f"NTP server '{x}' is neither a name nor an address"
    return None


def _check_module(value, answers):
    if not value.startswith("/") or not value.endswith(".so") and ".so." not in value:
        return "PKCS#11 module must be an absolute path to a library (.so)"
    return None


def _check_label(value, answers):
    if not 1 <= len(value.encode()) <= LABEL_MAX:
        return f"Token label must be 1-{LABEL_MAX} bytes"
    return None


def _check_pin(value, answers):
    if not PIN_MIN <= len(value) <= PIN_MAX:
        return f"PIN must be {PIN_MIN}-{PIN_MAX} characters long"
    if "\n" in value or "\r" in value:
        return "PIN must be one line"
    return None


def _check_crk_key(value, answers):
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return "Root key material must be 64 hexadecimal digits (32 bytes)"
    return None


def _check_admin_cert(value, answers):
    if value == "":
        return None
    try:
        pem_certificate(value)
    except ValueError as e:
        return str(e)
    return None


def _check_code(value, answers):
    if value != "" and len(value) < CODE_MIN:
        return f"Enrolment code must be at least {CODE_MIN} characters"
    return None


_CHECKS = {
    "hostname": _check_hostname, "ip": _check_ip, "gateway": _check_gateway,
    "dns": _check_dns, "ntp": _check_ntp, "pkcs11_module": _check_module,
    "token_label": _check_label, "token_pin": _check_pin, "so_pin": _check_pin,
    "crk_key": _check_crk_key, "admin_cert": _check_admin_cert, "enrolment_code": _check_code,
}


def pem_certificate(text):
    """A PEM certificate from PEM text or the base64 of one (OVF properties are
    one line). ValueError when it is neither."""
    import base64
    import binascii

    text = text.strip()
    if not text.startswith("-----BEGIN"):
        try:
            text = base64.b64decode(text, validate=True).decode("ascii").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("Admin certificate must be PEM or base64 of PEM") from None
    m = re.fullmatch(r"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----",
                     text)
    if not m:
        raise ValueError("Admin certificate must be one PEM certificate")
    return text + "\n"


def normalise(raw):
    """Answers from |raw| (key -> text): defaults filled in, fields that do not
    apply dropped, text trimmed (secrets kept as given)."""
    answers = {}
    for f in FIELDS:
        value = raw.get(f.key, "")
        value = value if f.secret else value.strip()
        if f.key == "hostname":
            value = value.lower()
        answers[f.key] = value if value != "" else f.default
    return {f.key: answers[f.key] for f in FIELDS if asked(f, answers)}


def validate(answers):
    """[(key, message)] for every invalid answer; [] when all are valid."""
    errors = []
    for f in FIELDS:
        if f.key in answers:
            msg = check_field(f.key, answers[f.key], answers)
            if msg:
                errors.append((f.key, msg))
    return errors


def parse_ovf_env(xml_text):
    """The keel.* properties of an ovf-env.xml document, as key -> value
    (without the "keel." prefix). ValueError on a document that is not one."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as e:
        raise ValueError(f"ovf-env.xml is not well-formed XML: {e}") from None
    if root.tag != f"{{{OVF_ENV_NS}}}Environment":
        raise ValueError("ovf-env.xml has no OVF Environment element")
    props = {}
    for p in root.iter(f"{{{OVF_ENV_NS}}}Property"):
        key = p.get(f"{{{OVF_ENV_NS}}}key", "")
        if key.startswith("keel.") and key[5:] in BY_KEY:
            props[key[5:]] = p.get(f"{{{OVF_ENV_NS}}}value", "")
    return props


# --- what first boot writes --------------------------------------------------

def network_unit(answers):
    """systemd-networkd's 80-keel.network for the answers."""
    lines = ["# Written by keel-setup (first boot or the console menu).", "[Match]",
             "Type=ether", "", "[Network]"]
    if answers.get("ip"):
        lines += [f"Address={answers['ip']}", f"Gateway={answers['gateway']}"]
    else:
        lines += ["DHCP=yes"]
    lines += [f"DNS={x}" for x in split_list(answers.get("dns", ""))]
    if not answers.get("ip"):
        lines += ["", "[DHCPv4]", "ClientIdentifier=mac"]
    return "\n".join(lines) + "\n"


def timesyncd_conf(answers):
    servers = " ".join(split_list(answers.get("ntp", "")))
    return "# Written by keel-setup.\n[Time]\n" + (f"NTP={servers}\n" if servers else "")


def keeld_conf(answers):
    """keeld.conf for the appliance: listens everywhere; the PIN file is the
    systemd credential keeld.service decrypts (never the PIN itself). The
    first administrator reaches keeld as admin.certificates_dir (registered
    as admin on keeld's first start) or admin.enrolment_file (a one-time
    code's verifier for POST /v1/enrol, which the appliance CA signs)."""
    module = "softhsm2" if answers["hsm"] == "softhsm" else answers["pkcs11_module"]
    first_admin = (f'certificates_dir = "{ADMINS_DIR}";' if answers.get("admin_cert")
                   else f'enrolment_file = "{ENROL_FILE}";')
    return f"""# keeld.conf of the Keel appliance, written by keel-setup at first boot.
# Every setting: /usr/share/doc/keel/keeld.conf.example.
listen = [ "0.0.0.0:{KMIP_PORT}", "[::]:{KMIP_PORT}" ];
log_level = "info";
# keeld.service starts keeld as keel (token and store); its network process
# runs as keel-net (both made by the keel package's sysusers.d).
user = "keel";
privsep:
{{
  user = "keel-net";
}};
tls:
{{
  certificate = "/etc/keel/tls/server.crt";
  private_key = "/etc/keel/tls/server.key";
}};
clients:
{{
  certificates_dir = "/etc/keel/clients";
  ca_file = "/etc/keel/tls/ca.crt";
}};
hsm:
{{
  module = {json.dumps(module)};
  token_label = {json.dumps(answers["token_label"])};
  pin_file = "{CRED_PIN}";
}};
store:
{{
  path = "{STATE}/keel.db";
}};
admin:
{{
  listen = [ "0.0.0.0:{ADMIN_PORT}", "[::]:{ADMIN_PORT}" ];
  {first_admin}
}};
pki:
{{
  ca_certificate = "/etc/keel/tls/ca.crt";
  ca_key = "{CA_KEY}";
}};
"""


def server_sans(hostname, addresses):
    """subjectAltName of the server certificate: the name, its first label,
    and every address the appliance has."""
    names = [hostname] + ([hostname.split(".")[0]] if "." in hostname else [])
    return ",".join([f"DNS:{n}" for n in names] + [f"IP:{a}" for a in addresses])


def write_file(path, text, mode=0o644):
    """Writes |path| through a temporary file renamed into place."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.rename(tmp, path)


# --- where ovf-env.xml comes from ---------------------------------------------

def run(argv, check=True, **kw):
    """subprocess.run that captures text, never uses a shell, and checks
    unless told not to."""
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


def ovf_env_from_guestinfo():
    if not shutil.which("vmware-rpctool"):
        return None
    try:
        out = run(["vmware-rpctool", "info-get guestinfo.ovfEnv"], timeout=10).stdout
    except (subprocess.SubprocessError, OSError):
        return None  # not on VMware, or no vApp options
    return out or None


def ovf_env_from_iso():
    """ovf-env.xml from a CD (vCenter's ISO transport, or -cdrom under KVM)."""
    devices = sorted(d for d in os.listdir("/dev") if re.fullmatch(r"sr[0-9]+", d))
    os.makedirs(RUN + "/iso", exist_ok=True)
    for dev in devices:
        try:
            run(["mount", "-t", "iso9660", "-o", "ro,nosuid,nodev,noexec", "/dev/" + dev,
                 RUN + "/iso"])
        except subprocess.CalledProcessError:
            continue
        try:
            with open(RUN + "/iso/ovf-env.xml", encoding="utf-8") as f:
                return f.read()
        except OSError:
            pass
        finally:
            subprocess.run(["umount", RUN + "/iso"], check=False)
    return None


def ovf_env_from_fw_cfg():
    try:
        with open(FW_CFG, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def find_ovf_env():
    """(source, text) of the first ovf-env.xml found, or (None, None)."""
    subprocess.run(["modprobe", "-q", "qemu_fw_cfg"], check=False)
    subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)  # CD drives probed
    for name, get in (("VMware guestinfo", ovf_env_from_guestinfo), ("ISO", ovf_env_from_iso),
                      ("qemu fw_cfg", ovf_env_from_fw_cfg)):
        text = get()
        if text:
            return name, text
    return None, None


# --- the consoles ---------------------------------------------------------------

class Consoles:
    """Text in and out on several terminals at once (tty1 and ttyS0): every
    line is written to all of them and an answer is taken from whichever
    terminal gives one first. Secrets are read with echo off everywhere."""

    def __init__(self, files):
        self.files = files  # [(rfile, wfile)]

    @classmethod
    def open(cls, paths):
        files = []
        for p in paths:
            try:
                fd = os.open(p, os.O_RDWR | os.O_NOCTTY)
            except OSError:
                continue
            files.append((os.fdopen(fd, "r", buffering=1), os.fdopen(os.dup(fd), "w", buffering=1)))
        return cls(files)

    def say(self, text=""):
        for _, w in self.files:
            try:
                w.write(text + "\n")  # the tty's ONLCR adds the carriage returns
                w.flush()
            except OSError:
                pass

    def ask(self, prompt, secret=False):
        """One line from the first terminal that answers (without newline)."""
        saved = []
        for r, w in self.files:
            # Echo off before the prompt shows, so that nothing typed after
            # it is echoed (and nothing is flushed: TCSANOW).
            if secret and r.isatty():
                attrs = termios.tcgetattr(r)
                saved.append((r, list(attrs)))
                attrs[3] &= ~termios.ECHO
                termios.tcsetattr(r, termios.TCSANOW, attrs)
            w.write(prompt)
            w.flush()
        try:
            ready, _, _ = select.select([r for r, _ in self.files], [], [])
            line = ready[0].readline()
        finally:
            for r, attrs in saved:
                termios.tcsetattr(r, termios.TCSANOW, attrs)
        if secret:
            self.say()
        if line == "":
            raise EOFError
        return line.rstrip("\r\n")


def ask_field(con, f, answers, current):
    """Asks one field until the answer is valid."""
    while True:
        hint = f" [{'/'.join(f.choices)}]" if f.choices else ""
        shown = "" if f.secret or current == "" else f" ({current})"
        value = con.ask(f"{f.label}{hint}{shown}: ", secret=f.secret)
        if not f.secret:
            value = value.strip()
        if value == "":
            value = current
        if f.key == "hostname":
            value = value.lower()
        if f.secret and f.key != "enrolment_code" and value:
            again = con.ask(f"{f.label} again: ", secret=True)
            if again != value:
                con.say("  The two entries differ; again.")
                continue
        msg = check_field(f.key, value, {**answers, f.key: value})
        if msg is None:
            return value
        con.say(f"  {msg}.")


def summary(answers):
    lines = ["", "Summary:"]
    for f in FIELDS:
        if f.key in answers:
            v = answers[f.key]
            shown = ("(set)" if v else "(none)") if f.secret else (v or "(DHCP)" if f.key == "ip" else v or "-")
            lines.append(f"  {f.label:<22} {shown}")
    return "\n".join(lines)


def wizard(con, start=None):
    """The console wizard: every field, validated, then a summary to confirm."""
    answers = dict(start or {})
    con.say("\nKeel appliance first-boot setup. Press Enter to keep the value in ().")
    while True:
        for f in FIELDS:
            if asked(f, answers):
                con.say(f"\n{f.help}")
                answers[f.key] = ask_field(con, f, answers, answers.get(f.key, f.default))
            else:
                answers.pop(f.key, None)
        answers = normalise(answers)
        errors = validate(answers)
        con.say(summary(answers))
        for key, msg in errors:
            con.say(f"  ! {msg}")
        if not errors and con.ask("\nApply these settings? [yes/no]: ").strip().lower() in ("y", "yes"):
            return answers
        con.say("Let's go through them again.")


# --- first boot -------------------------------------------------------------------

def stage_answers(con):
    """Part 1: the answers (ovf-env.xml, else the wizard), network and time
    settings on /var, the answers kept in /run for part 2."""
    source, text = find_ovf_env()
    answers = None
    if text:
        try:
            answers = normalise(parse_ovf_env(text))
        except ValueError as e:
            con.say(f"keel-setup: {source}: {e}")
        if answers is not None:
            errors = validate(answers)
            con.say(f"keel-setup: settings from ovf-env.xml ({source})")
            for _, msg in errors:
                con.say(f"  ! {msg}")
            if errors:
                answers = wizard(con, answers)
    if answers is None:
        answers = wizard(con)
    apply_network(answers)
    os.makedirs(RUN, mode=0o700, exist_ok=True)
    write_file(RUN + "/answers.json", json.dumps(answers), 0o600)
    return 0


def apply_network(answers):
    write_file(CONFIG + "/hostname", answers["hostname"] + "\n")
    write_file(CONFIG + "/network/80-keel.network", network_unit(answers))
    write_file(CONFIG + "/timesyncd.conf.d/keel.conf", timesyncd_conf(answers))
    try:
        import socket

        socket.sethostname(answers["hostname"])
    except OSError:
        pass  # set at next boot from /etc/hostname


def init_softhsm_token(label, so_pin, user_pin, env):
    """softhsm2-util --init-token, its PIN prompts answered through a
    pseudo-terminal so that no PIN is ever on a command line."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("softhsm2-util", ["softhsm2-util", "--init-token", "--free", "--label", label],
                   env)
    answers = [so_pin, so_pin, user_pin, user_pin]
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if answers and out.rstrip().endswith(b"PIN:"):
            os.write(fd, answers.pop(0).encode() + b"\n")
            out = b""
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("softhsm2-util could not initialise the token")


def hsm_env():
    return {**os.environ, "SOFTHSM2_CONF": "/etc/keel/softhsm2.conf"}


def keelctl_hsm(command, answers, pin_file, *extra):
    module = "softhsm2" if answers["hsm"] == "softhsm" else answers["pkcs11_module"]
    return run(["keelctl", "hsm", command, "--module", module, "--token", answers["token_label"],
                "--pin-file", pin_file, *extra], env=hsm_env()).stdout


def setup_token(answers):
    """The token and its CRK; the PIN encrypted as keeld's credential."""
    if answers["hsm"] == "softhsm":
        write_file(ETC_KEEL + "/softhsm2.conf",
                   f"directories.tokendir = {STATE}/tokens\nobjectstore.backend = file\n"
                   "log.level = ERROR\n")
        os.makedirs(STATE + "/tokens", mode=0o700, exist_ok=True)
        init_softhsm_token(answers["token_label"], answers["so_pin"], answers["token_pin"],
                           hsm_env())
    pin_file = RUN + "/pin"
    write_file(pin_file, answers["token_pin"] + "\n", 0o600)
    if answers["crk"] == "import":
        write_file(RUN + "/crk", answers["crk_key"] + "\n", 0o600)
        keelctl_hsm("import-crk", answers, pin_file, "--key-file", RUN + "/crk")
    elif "keel-crk-v" not in keelctl_hsm("list", answers, pin_file):
        keelctl_hsm("init-crk", answers, pin_file)
    # keel-creds: systemd-creds with the appliance's own key and identity.
    # Decrypted once here: a PIN keeld could not read must fail first boot,
    # not keeld's every start.
    cred = ETC_KEEL + "/hsm.pin.cred"  # PIN_CRED, through the /etc/keel link
    run([KEEL_CREDS, "encrypt", pin_file, cred])
    if run([KEEL_CREDS, "decrypt", cred, "-"]).stdout != answers["token_pin"] + "\n":
        raise RuntimeError("systemd-creds: the encrypted PIN does not decrypt")


def openssl(*args):
    return run(["openssl", *args]).stdout


def addresses():
    """The appliance's global addresses, from `ip -j addr`."""
    out = json.loads(run(["ip", "-j", "address", "show", "scope", "global"]).stdout)
    return [a["local"] for link in out for a in link.get("addr_info", []) if "local" in a]


def setup_certificates(answers):
    """The appliance CA, the server certificate (SANs: name and addresses) and
    the client certificate offered to vCenter ("KMS certificate and private
    key" trust). The CA key stays on the appliance, root only."""
    tls, ca_key = ETC_KEEL + "/tls", CA_KEY
    os.makedirs(CONFIG + "/ca", mode=0o750, exist_ok=True)
    os.makedirs(tls, mode=0o755, exist_ok=True)
    os.makedirs(ETC_KEEL + "/clients", mode=0o755, exist_ok=True)
    host = answers["hostname"]
    openssl("req", "-x509", "-newkey", "rsa:3072", "-nodes", "-keyout", ca_key, "-out",
            tls + "/ca.crt", "-days", "3650", "-subj", f"/CN=Keel appliance CA {host}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    leaf("server", tls, ca_key, f"/CN={host}", "serverAuth,clientAuth",
         server_sans(host, addresses()))
    leaf("vcenter", tls, ca_key, f"/CN=vcenter-client.{host}", "clientAuth", None)


def leaf(name, tls, ca_key, subject, eku, sans):
    key, csr, crt = (f"{tls}/{name}.{x}" for x in ("key", "csr", "crt"))
    ext = ["basicConstraints=critical,CA:FALSE",
           "keyUsage=critical,digitalSignature,keyEncipherment", f"extendedKeyUsage={eku}"]
    if sans:
        ext.append(f"subjectAltName={sans}")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", subject)
    write_file(RUN + "/ext.cnf", "\n".join(ext) + "\n")
    openssl("x509", "-req", "-in", csr, "-CA", tls + "/ca.crt", "-CAkey", ca_key,
            "-CAcreateserial", "-CAserial", RUN + "/ca.srl", "-days", "730", "-sha256",
            "-extfile", RUN + "/ext.cnf", "-out", crt)
    os.unlink(csr)
    os.chmod(key, 0o600)


def certificate_ips(path):
    """The IP addresses |path|'s subjectAltName names."""
    out = openssl("x509", "-in", path, "-noout", "-ext", "subjectAltName")
    return re.findall(r"IP Address:([0-9A-Fa-f:.]+)", out)


def unnamed_addresses(addrs, named):
    """The addresses in |addrs| that |named| (a certificate's) lacks: a DHCP
    lease that moved. The server certificate is not renewed by itself: vCenter
    trusts it by its fingerprint, and a new one must be trusted again there,
    so the console says so and menu 4 renews it when the operator chooses."""
    known = {ipaddress.ip_address(x) for x in named}
    return [a for a in addrs if ipaddress.ip_address(a) not in known]


def fingerprint(path):
    out = openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256")
    return out.strip().split("=", 1)[1]


def enrolment_verifier(code, salt=None, iterations=ENROL_ITERATIONS):
    """keeld's verifier of a one-time enrolment code: a salted PBKDF2-HMAC-
    SHA-256 ("pbkdf2-sha256$ITERATIONS$SALT$HASH", hex), never the code."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, iterations)
    return f"pbkdf2-sha256${iterations}${salt.hex()}${digest.hex()}"


def enrolment_file_text(code, now, days=ENROL_DAYS):
    """admin.enrolment_file: "VERIFIER EXPIRES" (POSIX seconds)."""
    return f"{enrolment_verifier(code)} {int(now) + days * 86400}\n"


def setup_admin(answers, now):
    """The first administrator: a certificate keeld registers as admin on its
    first start, or a one-time enrolment code (only its verifier is kept;
    keeld lets it enrol one administrator, once, for ENROL_DAYS). Returns a
    generated code, to be shown once on the console, else None."""
    code = answers.get("enrolment_code", "")
    if answers.get("admin_cert"):
        write_file(ADMINS_DIR_REAL + "/initial-admin.pem", pem_certificate(answers["admin_cert"]))
        return None
    generated = not code
    if generated:
        code = "-".join(secrets.token_hex(3) for _ in range(4))
    write_file(ENROL_FILE_REAL, enrolment_file_text(code, now), 0o640)
    return code if generated else None


def chown_keel(path):
    run(["chown", "-R", "keel:keel", path])


def stage_finish(con):
    """Part 2: token, CRK, certificates, keeld.conf; then the done mark."""
    try:
        with open(RUN + "/answers.json", encoding="utf-8") as f:
            answers = json.load(f)
    except OSError:
        con.say("keel-setup: no answers from part 1 (keel-firstboot.service)")
        return EX_SOFTWARE
    try:
        setup_token(answers)
        setup_certificates(answers)
        code = setup_admin(answers, time.time())
        write_file(ETC_KEEL + "/keeld.conf", keeld_conf(answers))
        os.makedirs(STATE, mode=0o700, exist_ok=True)
        chown_keel(STATE)
        run(["chown", "keel:keel", ETC_KEEL + "/tls/server.key"])
        # keeld reads the CA key (it signs enrolments and CSRs) and the code's verifier.
        run(["chown", "-R", "root:keel", CONFIG + "/ca"])
        os.chmod(CA_KEY, 0o640)
        if os.path.exists(ENROL_FILE_REAL):
            run(["chown", "root:keel", ENROL_FILE_REAL])
    except (subprocess.CalledProcessError, RuntimeError, OSError, ValueError, KeyError) as e:
        detail = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) else repr(e)
        con.say(f"keel-setup: first boot failed: {detail}")
        return EX_SOFTWARE
    finally:
        shutil.rmtree(RUN, ignore_errors=True)
    write_file(DONE, "")
    con.say(status_text())
    if code:
        con.say(f"One-time admin enrolment code (shown once): {code}")
    return 0


# --- the console after first boot -------------------------------------------------

NEXT_STEPS = f"""Next steps in vCenter (Configure > Security > Key Providers):
  1. Add Standard Key Provider: this appliance's address, port {KMIP_PORT}.
  2. Trust the KMS: compare the server certificate fingerprint above with
     the one vCenter shows.
  3. Make the KMS trust vCenter with "KMS certificate and private key":
     menu 4 shows vcenter.crt and vcenter.key to paste into vCenter."""


def status_text():
    def quiet(argv):
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        return r.stdout.strip() or "unknown"

    try:
        fp = fingerprint(ETC_KEEL + "/tls/server.crt")
    except (subprocess.CalledProcessError, OSError):
        fp = "(no server certificate)"
    try:
        own = addresses()
        addrs = ", ".join(own) or "(none yet)"
        moved = unnamed_addresses(own, certificate_ips(ETC_KEEL + "/tls/server.crt"))
    except (subprocess.CalledProcessError, OSError, ValueError):
        addrs, moved = "unknown", []
    with open("/proc/sys/kernel/hostname", encoding="ascii") as f:
        host = f.read().strip()
    return "\n".join([
        "", "Keel KMIP key manager appliance", "",
        f"  Host name     {host}",
        f"  Addresses     {addrs}",
        f"  KMIP          port {KMIP_PORT} (mutual TLS)",
        f"  keeld         {quiet(['systemctl', 'is-active', 'keeld.service'])}",
        f"  Time sync     {quiet(['timedatectl', 'show', '-p', 'NTPSynchronized', '--value'])}",
        "  Server certificate SHA-256 fingerprint:",
        f"    {fp}"] +
        [f"  ! The server certificate does not name {', '.join(moved)}: menu 4 renews it"
         " (vCenter must then trust the new one)."] * bool(moved) + ["", NEXT_STEPS])


def menu_network(con):
    answers = {}
    for key in ("ip", "gateway", "dns"):
        answers[key] = ask_field(con, BY_KEY[key], answers, "")
    with open(CONFIG + "/hostname", encoding="ascii") as f:
        answers["hostname"] = f.read().strip()
    write_file(CONFIG + "/network/80-keel.network", network_unit(answers))
    subprocess.run(["systemctl", "restart", "systemd-networkd.service"], check=False)
    con.say("Network settings applied. The server certificate still names the old addresses"
            " until menu 4 renews it.")


def menu_time(con):
    answers = {"ntp": ask_field(con, BY_KEY["ntp"], {}, "")}
    write_file(CONFIG + "/timesyncd.conf.d/keel.conf", timesyncd_conf(answers))
    subprocess.run(["systemctl", "restart", "systemd-timesyncd.service"], check=False)
    con.say("Time servers applied.")


def menu_certificates(con):
    tls = ETC_KEEL + "/tls"
    for name in ("ca.crt", "server.crt", "vcenter.crt", "vcenter.key"):
        with open(f"{tls}/{name}", encoding="ascii") as f:
            con.say(f"\n{name}:\n{f.read()}")
    if con.ask("Renew the server certificate for the current addresses? [yes/no]: ") == "yes":
        with open(CONFIG + "/hostname", encoding="ascii") as f:
            host = f.read().strip()
        os.makedirs(RUN, mode=0o700, exist_ok=True)
        leaf("server", tls, CA_KEY, f"/CN={host}", "serverAuth,clientAuth",
             server_sans(host, addresses()))
        run(["chown", "keel:keel", tls + "/server.key"])
        subprocess.run(["systemctl", "restart", "keeld.service"], check=False)
        con.say(f"New server certificate: {fingerprint(tls + '/server.crt')}")


def hsm_of_conf(text):
    """{"hsm": ..., "pkcs11_module": ..., "token_label": ...} of keeld.conf's
    hsm section (as keeld_conf wrote it), for keelctl_hsm."""
    module = re.search(r'^  module = "([^"]*)";', text, re.M)
    label = re.search(r'^  token_label = "([^"]*)";', text, re.M)
    if not module or not label:
        raise ValueError("keeld.conf has no hsm module and token_label")
    hsm = "softhsm" if module.group(1) == "softhsm2" else "pkcs11"
    return {"hsm": hsm, "pkcs11_module": module.group(1), "token_label": label.group(1)}


def change_token_pin(new_pin):
    """Rotates the token's user PIN (after deployment: the bootstrap PIN stays
    in vCenter's vApp properties). keeld stops; the new PIN is encrypted as
    keeld's credential first, then set in the token (C_SetPIN through keelctl
    hsm change-pin, PINs in files in /run, never on a command line), then the
    credential replaces the old one and keeld starts again. RuntimeError or
    CalledProcessError when it fails; the token then keeps the old PIN."""
    with open(ETC_KEEL + "/keeld.conf", encoding="utf-8") as f:
        hsm = hsm_of_conf(f.read())
    os.makedirs(RUN, mode=0o700, exist_ok=True)
    old, new, cred = RUN + "/pin", RUN + "/new.pin", ETC_KEEL + "/hsm.pin.cred"
    subprocess.run(["systemctl", "stop", "keeld.service"], check=False)
    try:
        write_file(new, new_pin + "\n", 0o600)
        run([KEEL_CREDS, "decrypt", cred, old])
        run([KEEL_CREDS, "encrypt", new, cred + ".new"])
        keelctl_hsm("change-pin", hsm, old, "--new-pin-file", new)
        os.rename(cred + ".new", cred)
    finally:
        for path in (old, new, cred + ".new"):
            if os.path.exists(path):
                os.unlink(path)
        subprocess.run(["systemctl", "start", "keeld.service"], check=False)


def menu_token_pin(con):
    con.say("A new user PIN for the token (the one given at deployment stays visible in "
            "vCenter's vApp properties).")
    pin = ask_field(con, BY_KEY["token_pin"], {}, "")
    try:
        change_token_pin(pin)
    except (subprocess.CalledProcessError, RuntimeError, ValueError) as e:
        detail = e.stderr.strip() if isinstance(e, subprocess.CalledProcessError) else str(e)
        con.say(f"The PIN was not changed: {detail}")
        return
    con.say("The token's PIN was changed; keeld runs with the new one.")


def menu_factory_reset(con):
    con.say("Factory reset destroys the token, the root key and EVERY key this appliance holds.")
    if con.ask("Type 'factory reset' to confirm: ") != "factory reset":
        con.say("Nothing was changed.")
        return
    subprocess.run(["systemctl", "stop", "keeld.service"], check=False)
    for path in (CONFIG, STATE):
        for entry in os.listdir(path):
            p = os.path.join(path, entry)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
    subprocess.run(["systemctl", "reboot"], check=False)


MENU = (("Refresh status", None), ("Network settings", menu_network),
        ("Time servers", menu_time), ("Certificates", menu_certificates),
        ("Token PIN", menu_token_pin), ("Factory reset", menu_factory_reset),
        ("Reboot", lambda con: subprocess.run(["systemctl", "reboot"], check=False)),
        ("Power off", lambda con: subprocess.run(["systemctl", "poweroff"], check=False)))


def console(con):
    while True:
        con.say(status_text())
        con.say("\n" + "  ".join(f"{i + 1}) {name}" for i, (name, _) in enumerate(MENU)))
        choice = con.ask("Choice: ").strip()
        if choice.isdigit() and 1 <= int(choice) <= len(MENU) and MENU[int(choice) - 1][1]:
            try:
                MENU[int(choice) - 1][1](con)
            except (OSError, subprocess.CalledProcessError) as e:
                con.say(f"Failed: {e}")


USAGE = """usage: keel-setup COMMAND
  answers          first boot, part 1: ovf-env.xml or the console wizard
  finish           first boot, part 2: token, CRK, certificates, keeld.conf
  console          the status screen and maintenance menu (on its terminal)
  check-env FILE   parse and validate an ovf-env.xml; print the settings
                   (secrets shown as set/unset) as JSON
Exit status: 0 done, 64 usage, 65 invalid ovf-env.xml, 70 a step failed."""


def check_env(path):
    with open(path, encoding="utf-8") as f:
        answers = normalise(parse_ovf_env(f.read()))
    errors = validate(answers)
    shown = {k: (bool(v) if BY_KEY[k].secret else v) for k, v in answers.items()}
    print(json.dumps({"settings": shown, "errors": [m for _, m in errors]}, indent=2))
    return EX_DATAERR if errors else 0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if len(argv) >= 2 else sys.stderr)
        return 0 if len(argv) >= 2 else EX_USAGE
    cmd = argv[1]
    try:
        if cmd == "check-env" and len(argv) == 3:
            return check_env(argv[2])
        if cmd == "console" and len(argv) == 2:
            return console(Consoles([(sys.stdin, sys.stdout)]))
        if cmd in ("answers", "finish") and len(argv) == 2:
            con = Consoles.open(["/dev/tty1", "/dev/ttyS0"])
            return (stage_answers if cmd == "answers" else stage_finish)(con)
    except ValueError as e:
        print(f"keel-setup: {e}", file=sys.stderr)
        return EX_DATAERR
    except EOFError:
        return EX_SOFTWARE
    print(USAGE, file=sys.stderr)
    return EX_USAGE
