#!/usr/bin/env python3
"""Rebuilds data/demo/ from the workplace's ../shared/data (see README.md here).

Run from the repository root: python3 data/demo/make-bundle.py [SHARED_DATA_DIR].
Only subsets and copies: every record is as published.
"""
import json
import subprocess
import os
import shutil
import sys
import zipfile

shared = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
out = os.path.join(os.path.dirname(os.path.abspath(__file__)))
adv = os.path.join(out, "advisories")
hosts = os.path.join(out, "hosts")
os.makedirs(adv, exist_ok=True)

# The AlmaLinux hosts run the UBI 9.2 image's packages (x86_64 and noarch rows).
rpm_names = set()
with open(os.path.join(shared, "inventories/rpm/ubi9-9.2-755.rpm-inventory.tsv")) as f:
    next(f)
    for line in f:
        cols = line.rstrip("\n").split("\t")
        if cols[4] in ("x86_64", "noarch"):
            rpm_names.add(cols[0])
os.makedirs(os.path.join(hosts, "almalinux9"), exist_ok=True)
with open(os.path.join(shared, "inventories/rpm/ubi9-9.2-755.rpm-inventory.tsv")) as src, open(
    os.path.join(hosts, "almalinux9/rpm-inventory.tsv"), "w"
) as dst:
    for i, line in enumerate(src):
        cols = line.rstrip("\n").split("\t")
        if i == 0 or cols[4] in ("x86_64", "noarch"):
            dst.write(line)

# AlmaLinux 9 advisories that name one of those packages, as an OSV zip.
cves = set()
kept = 0
with zipfile.ZipFile(os.path.join(shared, "osv/almalinux-all.zip")) as z, zipfile.ZipFile(
    os.path.join(adv, "almalinux9-ubi-subset.zip"), "w", zipfile.ZIP_DEFLATED
) as w:
    for name in sorted(z.namelist()):
        if not name.startswith("almalinux9/") or not name.endswith(".json"):
            continue
        doc = json.loads(z.read(name))
        names = {a.get("package", {}).get("name") for a in doc.get("affected", [])}
        if names & rpm_names:
            w.writestr(z.getinfo(name), z.read(name), zipfile.ZIP_DEFLATED)  # the source's dates: reproducible
            kept += 1
            cves.update(x for x in doc.get("aliases", []) + doc.get("upstream", []) + doc.get("related", []) if x.startswith("CVE-"))
print("almalinux advisories kept:", kept)

# Alpine 3.11 secdb (main): small enough to copy whole.
shutil.copy(os.path.join(shared, "alpine/json/v3.11/main.json"), os.path.join(adv, "alpine-v3.11-main.json"))
for p in json.load(open(os.path.join(shared, "alpine/json/v3.11/main.json")))["packages"]:
    for ids in p["pkg"]["secfixes"].values():
        cves.update(x for x in ids if x.startswith("CVE-"))

# The Debian security tracker sample (vunnel's test input: the only tracker JSON in shared/).
shutil.copy(
    os.path.join(shared, "fixtures/vunnel/tests/unit/providers/debian/test-fixtures/input/debian.json"),
    os.path.join(adv, "debian-tracker-sample.json"),
)

# KEV, trimmed to the CVEs the advisories above name.
kev = json.load(open(os.path.join(shared, "kev/known_exploited_vulnerabilities.json")))
kev["vulnerabilities"] = [v for v in kev["vulnerabilities"] if v["cveID"] in cves]
kev["count"] = len(kev["vulnerabilities"])
with open(os.path.join(adv, "kev-subset.json"), "w") as f:
    json.dump(kev, f, indent=1)
print("kev entries kept:", kev["count"])

# Host roots the agent's own collector reads: os-release and the package database.
def root(name, os_release, db_src, db_path):
    base = os.path.join(hosts, name)
    os.makedirs(os.path.join(base, "etc"), exist_ok=True)
    os.makedirs(os.path.join(base, os.path.dirname(db_path)), exist_ok=True)
    shutil.copy(os.path.join(shared, "inventories/os-release", os_release), os.path.join(base, "etc/os-release"))
    shutil.copy(os.path.join(shared, db_src), os.path.join(base, db_path))

root("debian12", "claircore_debian_testdata_dist_12_etc_os-release", "debian/debian12-host.status", "var/lib/dpkg/status")

# The binary packages (name, architecture) of the sources the tracker sample says bookworm
# shipped at a version its security update fixes (today: sope, 5.8.0-1 fixed in
# 5.8.0-1+deb12u1), from Debian 12's package lists. Demo Debian hosts in the "app" role carry
# them: at the release version when behind, at the fixed version when patched.
tracker = json.load(open(os.path.join(adv, "debian-tracker-sample.json")))
sources = {}
for source, cves in tracker.items():
    for info in cves.values():
        releases = info.get("releases")
        rel = releases.get("bookworm") if isinstance(releases, dict) else None
        shipped = rel and rel.get("repositories", {}).get("bookworm")
        fixed = rel and rel.get("fixed_version")
        # Only where the release's own version is older than the fix (dpkg's ordering).
        if shipped and fixed and subprocess.run(
            ["dpkg", "--compare-versions", shipped, "lt", fixed]
        ).returncode == 0:
            sources[source] = (shipped, fixed)
with open(os.path.join(hosts, "debian12/tracker-packages.tsv"), "w") as out:
    out.write("package\tarch\tsource\trelease_version\tfixed_version\n")
    for line in open(os.path.join(shared, "debian/bookworm-main-amd64.tsv")):
        cols = line.rstrip("\n").split("\t")
        if len(cols) == 4 and cols[3] in sources and not cols[0].endswith("-dev"):
            out.write("\t".join([cols[0], cols[2], cols[3], *sources[cols[3]]]) + "\n")
root("alpine3.11", "claircore_alpine_testdata_3.11_etc_os-release", "inventories/apk/scalibr-installed", "lib/apk/db/installed")
shutil.copy(
    os.path.join(shared, "inventories/os-release/claircore_rhel_testdata_releasefiles_9_etc_os-release"),
    os.path.join(hosts, "almalinux9/os-release-ubi9"),
)
