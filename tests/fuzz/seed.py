#!/usr/bin/env python3
"""Writes a seed corpus for one fuzz harness into a directory.

Seeds come from tests/fuzz/regressions/<harness>/ and, when the shared vectors
are present (../shared/vectors, or $KEEL_VECTORS), from them: the vCenter
session's messages as TTLV, the OASIS test cases' messages as XML and as JSON.
The vectors are read at run time and never copied into the repository.
"""
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = os.environ.get("KEEL_VECTORS", os.path.join(ROOT, "..", "shared", "vectors"))


def vcenter_messages():
    path = os.path.join(VECTORS, "vcenter", "vcenter-7.0.3-session.txt")
    if not os.path.exists(path):
        return
    name, hexes = None, []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line.startswith("#") or not line:
            continue
        m = re.match(r"^([a-z0-9-]+):$", line)
        if m:
            if name:
                yield name, bytes.fromhex("".join(hexes))
            name, hexes = m.group(1), []
        else:
            hexes.append(line)
    if name:
        yield name, bytes.fromhex("".join(hexes))


def oasis_messages():
    base = os.path.join(VECTORS, "oasis-xml")
    if not os.path.isdir(base):
        return
    for dirpath, _, files in os.walk(base):
        for f in sorted(files):
            if not f.endswith(".xml"):
                continue
            text = open(os.path.join(dirpath, f), encoding="utf-8").read()
            pattern = r"<(RequestMessage|ResponseMessage)>.*?</\1>"
            for i, m in enumerate(re.finditer(pattern, text, re.S)):
                yield f"{f}-{i}", m.group(0)


def oasis_as_ttlv(limit=400):
    """The first messages of the OASIS files as TTLV, through the built keelctl.

    Messages with placeholders ($NOW) have no TTLV form and are left out."""
    keelctl = os.path.join(ROOT, "build-fuzz", "tools", "keelctl", "keelctl")
    if not os.path.exists(keelctl):
        return
    import subprocess
    seen = set()
    for name, text in oasis_messages():
        base = name.rsplit("-", 1)[0]
        if base in seen or len(seen) >= limit:
            continue
        seen.add(base)
        r = subprocess.run([keelctl, "ttlv", "convert", "--from", "xml", "--to", "bin"],
                           input=text.encode(), capture_output=True)
        if r.returncode == 0:
            yield name, r.stdout


def to_json(elem):
    """The KMIP JSON profile's form of one XML element."""
    out = {"tag": elem.tag}
    children = list(elem)
    if children:
        out["value"] = [to_json(c) for c in children]
        return out
    if "type" in elem.attrib:
        out["type"] = elem.attrib["type"]
    if "value" in elem.attrib:
        out["value"] = elem.attrib["value"]
    return out


def main():
    harness, corpus = sys.argv[1], sys.argv[2]
    os.makedirs(corpus, exist_ok=True)
    kept = os.path.join(ROOT, "tests", "fuzz", "regressions", harness)
    if os.path.isdir(kept):
        for f in os.listdir(kept):
            shutil.copy(os.path.join(kept, f), os.path.join(corpus, "kept-" + f))
    if harness in ("fuzz_ttlv", "fuzz_request"):
        for name, data in vcenter_messages():
            open(os.path.join(corpus, "vcenter-" + name), "wb").write(data)
        for name, data in oasis_as_ttlv():
            open(os.path.join(corpus, name + ".ttlv"), "wb").write(data)
    elif harness == "fuzz_xml":
        for name, text in oasis_messages():
            open(os.path.join(corpus, name), "w", encoding="utf-8").write(text)
    elif harness == "fuzz_config":
        shutil.copy(os.path.join(ROOT, "appliance", "keeld.conf.example"),
                    os.path.join(corpus, "keeld.conf.example"))
    elif harness == "fuzz_json":
        import json
        for name, text in oasis_messages():
            try:
                doc = to_json(ET.fromstring(text))
            except ET.ParseError:
                continue
            with open(os.path.join(corpus, name + ".json"), "w", encoding="utf-8") as f:
                json.dump(doc, f)


if __name__ == "__main__":
    main()
