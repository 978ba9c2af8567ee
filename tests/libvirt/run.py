#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt end to end: Debian's libvirt 9.0 drives the series' QEMU.

Usage: run.py QEMU IVSHMEM_SERVER

Private libvirtd instances (see lvtest.py) start transient domains with
ivshmem-plain and ivshmem-doorbell <shmem> devices through virsh.  Every
case prints a TAP line; the run ends with "N passed, N failed, N skipped"
and exits non-zero when a case failed or was skipped.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lvtest import (Daemon, Fail, deadline_wait, domain_xml, shmem_xml,  # noqa
                    cmdline_json, prepare_mountpoints, cleanup_mountpoints)

QEMU = os.path.abspath(sys.argv[1])
SERVER = os.path.abspath(sys.argv[2])
HOTPLUG_ROUNDS = int(os.environ.get("LIBVIRT_HOTPLUG_ROUNDS", "20"))
SIZE = 4 << 20
ACPI_PCIHP = 0xae00           # PIIX4 ACPI PCI hot plug registers
PCI_DOWN, PCI_EJ = 0x04, 0x08

TOP = tempfile.mkdtemp(prefix="ivshmem-libvirt.")
daemons = {}
servers = []
results = []


def log(msg):
    for ln in str(msg).rstrip().splitlines():
        print("# " + ln, flush=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class Server:
    """The series' ivshmem-server on a socket in TOP, 2 vectors."""

    def __init__(self, name):
        self.sock = os.path.join(TOP, name + ".sock")
        self.logpath = os.path.join(TOP, name + ".log")
        out = open(self.logpath, "w")
        self.proc = subprocess.Popen([SERVER, "-S", self.sock, "-n", "2"],
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT)
        out.close()
        servers.append(self)

        def listening():
            if self.proc.poll() is not None:
                raise Fail("ivshmem-server exited: " + self.log())
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(self.sock)
                return True
            except OSError:
                return False
            finally:
                s.close()
        deadline_wait("ivshmem-server on " + self.sock, listening, 10)

    def log(self):
        with open(self.logpath) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_domain(d, name, shmems, extra_ns=""):
    xml = domain_xml(name, QEMU, shmems)
    if extra_ns:
        xml = xml.replace("<domain type='qemu'>", "<domain type='qemu' "
                          "xmlns:qemu='http://libvirt.org/schemas/domain/"
                          "qemu/1.0'>").replace("</devices>",
                                                "</devices>\n" + extra_ns)
    path = write(os.path.join(TOP, name + ".xml"), xml)
    rc, out, err = d.virsh("create", path, check=False)
    if rc != 0:
        raise Fail("virsh create %s failed: %s\n--- domain log:\n%s" % (
            name, err.strip(), tail(d.domain_log(name))))
    deadline_wait(name + " running", lambda: d.state(name) == "running", 30)
    pid = d.qemu_pid(name)
    if not pid:
        raise Fail("no pid file for " + name)
    return pid


def tail(path, n=30):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return str(e)


def destroy(d, name):
    if name in d.domains():
        d.virsh("destroy", name, check=False)
    deadline_wait(name + " gone", lambda: name not in d.domains(), 30)


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


def qom_master(d, dom, dev):
    return d.qmp(dom, "qom-get", path="/machine/peripheral/" + dev,
                 property="master")


def shmem_file(d, name):
    return d.host_path("/dev/shm/" + name)


def wait_file(path):
    deadline_wait(path + " at full size", lambda: os.path.exists(path) and
                  os.path.getsize(path) == SIZE, 10)


def pattern(seed):
    return (bytes([seed]) + os.urandom(255)) * (SIZE // 256)


def write_mem(path, data):
    with open(path, "r+b") as f:
        f.write(data)


def read_mem(path):
    with open(path, "rb") as f:
        return f.read()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- cases -----------------------------------------------------------

def case_start(model, role):
    d = daemons["d1"]
    dom = "lv-%s-%s" % (model.split("-")[1], role or "none")
    srv = Server(dom) if model == "ivshmem-doorbell" else None
    try:
        pid = start_domain(d, dom, [shmem_xml(dom, model, role,
                                              srv.sock if srv else None)])
        devs, argv = cmdline_json(pid, "-device")
        objs, _ = cmdline_json(pid, "-object")
        dev = [x for x in devs if x.get("id") == "shmem0"]
        expect(len(dev) == 1, "no -device with id shmem0 in " + " ".join(argv))
        dev = dict(dev[0])
        dev.pop("bus", None)
        dev.pop("addr", None)
        if model == "ivshmem-plain":
            want = {"driver": "ivshmem-plain", "id": "shmem0",
                    "memdev": "shmmem-shmem0"}
            obj = [o for o in objs if o.get("id") == "shmmem-shmem0"]
            want_obj = {"qom-type": "memory-backend-file",
                        "id": "shmmem-shmem0", "mem-path": "/dev/shm/" + dom,
                        "size": SIZE, "share": True}
            expect(obj == [want_obj], "-object %s, expected %s" % (
                obj, want_obj))
        else:
            want = {"driver": "ivshmem-doorbell", "id": "shmem0",
                    "chardev": "charshmem0", "vectors": 2, "ioeventfd": True}
            chr_arg = "socket,id=charshmem0,path=" + srv.sock
            expect(chr_arg in argv, "no -chardev %s in %s" % (
                chr_arg, " ".join(argv)))
        # libvirt 9.0 gives master=on/off for role master/peer to
        # ivshmem-plain only; an ivshmem-doorbell never gets master
        if role and model == "ivshmem-plain":
            want["master"] = "on" if role == "master" else "off"
        expect(dev == want, "-device %s, expected %s" % (
            json.dumps(dev), json.dumps(want)))
        got = qom_master(d, dom, "shmem0")
        expect(got == ("on" if role == "master" and model == "ivshmem-plain"
                       else "off"),
               "qom-get master = %r" % got)
        if model == "ivshmem-plain":
            wait_file(shmem_file(d, dom))
        log("-device " + json.dumps(dev))
    finally:
        destroy(d, dom)
        if srv:
            srv.stop()


def bar0(d, dom, dev):
    """BAR0 address of dev once the firmware has mapped it, else None."""
    out = d.hmp(dom, "info pci")
    for block in out.split("Bus ")[1:]:
        if 'id "%s"' % dev in block:
            m = re.search(r"BAR0: 32 bit memory at (0x[0-9a-f]+) ", block)
            if m and int(m.group(1), 16) < 0xffffffff:
                return int(m.group(1), 16)
    return None


def read_ivposition(d, dom):
    addr = deadline_wait(dom + " BAR0 mapped by the firmware",
                         lambda: bar0(d, dom, "shmem0"), 30, 0.2)
    out = d.hmp(dom, "xp /1wx 0x%x" % (addr + 8))
    m = re.search(r":\s*(0x[0-9a-f]+)", out)
    expect(m, "xp output: %r" % out)
    return int(m.group(1), 16)


def case_ivposition():
    d = daemons["d1"]
    srv = Server("ivpos")
    doms = ["lv-ivpos-a", "lv-ivpos-b"]
    try:
        for dom in doms:
            start_domain(d, dom, [shmem_xml(dom, "ivshmem-doorbell",
                                            server=srv.sock)])
        ids = [read_ivposition(d, dom) for dom in doms]
        log("IVPOSITION read from BAR0 (HMP xp): %s" % ids)
        expect(ids[0] != ids[1], "both peers have IVPOSITION %d" % ids[0])
        for i in ids:
            expect(0 <= i < 65536, "IVPOSITION %d out of range" % i)
    finally:
        for dom in doms:
            destroy(d, dom)
        srv.stop()


class SideMonitor:
    """A QMP monitor of our own on the domain, the guest's hands: the
    domain has no OS to answer the ACPI eject request, so we read the
    PIIX4 hot plug 'down' register and write the eject register, as the
    guest's ACPI code would, while libvirt's monitor is busy in
    detach-device."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        deadline_wait("side monitor " + path,
                      lambda: self._connect(path), 10)
        self.f = self.s.makefile("rw")
        self._read()                       # greeting
        self.cmd("qmp_capabilities")

    def _connect(self, path):
        try:
            self.s.connect(path)
            return True
        except OSError:
            return False

    def _read(self):
        while True:
            ln = self.f.readline()
            if not ln:
                raise Fail("side monitor closed")
            msg = json.loads(ln)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        r = self._read()
        if "error" in r:
            raise Fail("%s: %s" % (name, r["error"]))
        return r["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def close(self):
        self.s.close()


def live_shmems(d, dom):
    """{name: (slot, alias)} of the <shmem> devices of the live domain XML."""
    root = ET.fromstring(d.virsh("dumpxml", dom)[1])
    out = {}
    for sh in root.findall("./devices/shmem"):
        a = sh.find("address")
        al = sh.find("alias")
        out[sh.get("name")] = (int(a.get("slot"), 16) if a is not None
                               else None, al.get("name") if al is not None
                               else None)
    return out


def detach_as_guest(d, dom, mon, xmlpath, name, slot):
    p = subprocess.Popen(["virsh", "-c", d.uri, "detach-device", dom,
                          xmlpath, "--live"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        bit = 1 << slot

        def requested():
            out = mon.hmp("i /w 0x%x" % (ACPI_PCIHP + PCI_DOWN))
            m = re.search(r"=\s*(0x[0-9a-f]+)", out)
            return m and int(m.group(1), 16) & bit
        deadline_wait("unplug request for slot %d" % slot, requested, 10,
                      0.02)
        mon.hmp("o /w 0x%x 0x%x" % (ACPI_PCIHP + PCI_EJ, bit))
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    expect(p.returncode == 0, "detach-device %s: %s" % (name, out.strip()))
    expect("detached successfully" in out,
           "detach-device %s did not complete: %s" % (name, out.strip()))
    deadline_wait(name + " gone from the live XML",
                  lambda: name not in live_shmems(d, dom), 10)


def case_hotplug():
    d = daemons["d1"]
    dom = "lv-hotplug"
    srv = Server(dom)
    monpath = os.path.join(TOP, dom + ".qmp")
    ns = ("  <qemu:commandline>\n    <qemu:arg value='-qmp'/>\n"
          "    <qemu:arg value='unix:%s,server=on,wait=off'/>\n"
          "  </qemu:commandline>" % monpath)
    devs = {"lvhp-plain": write(os.path.join(TOP, "hp-plain.xml"),
                                shmem_xml("lvhp-plain", "ivshmem-plain",
                                          "master").strip()),
            "lvhp-bell": write(os.path.join(TOP, "hp-bell.xml"),
                               shmem_xml("lvhp-bell", "ivshmem-doorbell",
                                         server=srv.sock).strip())}
    mon = None
    try:
        pid = start_domain(d, dom, [], ns)
        mon = SideMonitor(monpath)
        for rnd in range(HOTPLUG_ROUNDS + 1):
            for name, path in devs.items():
                d.virsh("attach-device", dom, path, "--live")
            live = live_shmems(d, dom)
            expect(set(live) == set(devs), "round %d: live XML has %s" % (
                rnd, sorted(live)))
            qdevs = d.qmp(dom, "qom-list", path="/machine/peripheral")
            qnames = {p["name"] for p in qdevs}
            for name, (slot, alias) in live.items():
                expect(alias in qnames, "round %d: no %s (%s) in QEMU (%s)" %
                       (rnd, alias, name, sorted(qnames)))
            if rnd == HOTPLUG_ROUNDS:
                break                      # the re-attach with the same names
            for name, path in devs.items():
                detach_as_guest(d, dom, mon, path, name, live[name][0])
        expect(os.path.exists("/proc/%d" % pid) and
               d.state(dom) == "running", "QEMU not alive at the end")
        log("%d rounds of attach/detach of both models, then re-attached "
            "with the same names" % HOTPLUG_ROUNDS)
    finally:
        if mon:
            mon.close()
        destroy(d, dom)
        srv.stop()


def case_detach_libvirt_monitor():
    """The brief's flow: detach-device returns after libvirt's own wait,
    then the eject is written through libvirt's monitor."""
    d = daemons["d1"]
    dom = "lv-detach-mon"
    path = write(os.path.join(TOP, "dm-plain.xml"),
                 shmem_xml("lvdm-plain", "ivshmem-plain", "master").strip())
    try:
        start_domain(d, dom, [])
        d.virsh("attach-device", dom, path, "--live")
        slot = live_shmems(d, dom)["lvdm-plain"][0]
        t = time.monotonic()
        d.virsh("detach-device", dom, path, "--live")
        log("detach-device returned after %.1fs, before the eject" % (
            time.monotonic() - t))
        expect("lvdm-plain" in live_shmems(d, dom),
               "device gone before the guest's eject")
        d.hmp(dom, "o /w 0x%x 0x%x" % (ACPI_PCIHP + PCI_EJ, 1 << slot))
        deadline_wait("lvdm-plain gone from the live XML",
                      lambda: "lvdm-plain" not in live_shmems(d, dom), 10)
        d.virsh("attach-device", dom, path, "--live")
        expect("lvdm-plain" in live_shmems(d, dom), "re-attach failed")
    finally:
        destroy(d, dom)


def case_save_restore():
    d = daemons["d1"]
    dom = "lv-save"
    img = os.path.join(TOP, dom + ".img")
    try:
        start_domain(d, dom, [shmem_xml(dom, "ivshmem-plain", "master")])
        f = shmem_file(d, dom)
        wait_file(f)
        a = pattern(0xa5)
        write_mem(f, a)
        d.virsh("save", dom, img, timeout=120)
        expect(dom not in d.domains(), "domain still there after save")
        write_mem(f, pattern(0x5a))
        d.virsh("restore", img, timeout=120)
        deadline_wait(dom + " running", lambda: d.state(dom) == "running", 30)
        got = read_mem(f)
        expect(got == a, "memory file after restore differs from the saved "
               "contents (first byte 0x%02x)" % got[0])
        expect(qom_master(d, dom, "shmem0") == "on", "master not on")
        log("memory overwritten after save came back from the stream")
    finally:
        destroy(d, dom)


def case_save_peer_refused():
    d = daemons["d1"]
    dom = "lv-save-peer"
    img = os.path.join(TOP, dom + ".img")
    try:
        start_domain(d, dom, [shmem_xml(dom, "ivshmem-plain", "peer")])
        rc, out, err = d.virsh("save", dom, img, check=False, timeout=120)
        log("virsh save: " + (err or out).strip())
        expect(rc != 0, "save of a peer succeeded")
        expect(d.state(dom) == "running", "domain not running after the "
               "refused save: %s" % d.state(dom))
    finally:
        destroy(d, dom)


def migrate(src, dst, dom, shared):
    try:
        start_domain(src, dom, [shmem_xml(dom, "ivshmem-plain", "master")])
        f_src = shmem_file(src, dom)
        f_dst = shmem_file(dst, dom)
        expect((f_src == f_dst) == shared, "daemon shm directories wrong")
        wait_file(f_src)
        a = pattern(0x3c)
        write_mem(f_src, a)
        uri = "tcp://127.0.0.1:%d" % free_port()
        rc, out, err = src.virsh("migrate", "--live", dom, dst.uri,
                                 "--migrateuri", uri, check=False,
                                 timeout=120)
        if rc != 0:
            raise Fail("virsh migrate: %s\n--- source log:\n%s--- "
                       "destination log:\n%s" % (
                           err.strip(), tail(src.domain_log(dom)),
                           tail(dst.domain_log(dom))))
        deadline_wait(dom + " running on the destination",
                      lambda: dst.state(dom) == "running", 30)
        deadline_wait(dom + " gone from the source",
                      lambda: dom not in src.domains(), 30)
        expect(qom_master(dst, dom, "shmem0") == "on", "master not on")
        got = read_mem(f_dst)
        expect(got == a, "destination memory differs from the source's")
        log("migrated over %s, %s memory file" % (
            uri, "the same" if shared else "a separate"))
    finally:
        for d in (src, dst):
            if dom in d.domains():
                destroy(d, dom)


def case_migrate_same_file():
    migrate(daemons["d1"], daemons["d2"], "lv-mig-same", True)


def case_migrate_separate_files():
    migrate(daemons["d1"], daemons["d3"], "lv-mig-sep", False)


def case_migrate_peer_refused():
    src, dst = daemons["d1"], daemons["d3"]
    dom = "lv-mig-peer"
    try:
        start_domain(src, dom, [shmem_xml(dom, "ivshmem-plain", "peer")])
        rc, out, err = src.virsh("migrate", "--live", dom, dst.uri,
                                 "--migrateuri", "tcp://127.0.0.1:%d" %
                                 free_port(), check=False, timeout=120)
        log("virsh migrate: " + (err or out).strip())
        expect(rc != 0, "migration of a peer succeeded")
        expect(src.state(dom) == "running", "source not running")
    finally:
        for d in (src, dst):
            if dom in d.domains():
                destroy(d, dom)


def case_migrate_doorbell_master():
    """libvirt 9.0 allows migrating a doorbell with role='master' but gives
    the device no master=on, so QEMU's migration blocker refuses it."""
    src, dst = daemons["d1"], daemons["d3"]
    dom = "lv-mig-bell"
    srv = Server(dom)
    try:
        start_domain(src, dom, [shmem_xml(dom, "ivshmem-doorbell", "master",
                                          server=srv.sock)])
        rc, out, err = src.virsh("migrate", "--live", dom, dst.uri,
                                 "--migrateuri", "tcp://127.0.0.1:%d" %
                                 free_port(), check=False, timeout=120)
        log("virsh migrate: " + (err or out).strip())
        expect(rc != 0, "migration of a doorbell without master=on succeeded")
        expect(src.state(dom) == "running", "source not running")
        expect(dom not in dst.domains(), "domain left on the destination")
    finally:
        for d in (src, dst):
            if dom in d.domains():
                destroy(d, dom)
        srv.stop()


CASES = []
for _m in ("ivshmem-plain", "ivshmem-doorbell"):
    for _r in (None, "master", "peer"):
        CASES.append(("start %s role=%s, -device as libvirt's test data" % (
            _m, _r or "(none)"), ["d1"],
            (lambda m, r: lambda: case_start(m, r))(_m, _r)))
CASES += [
    ("two doorbell domains on one server get distinct IVPOSITION", ["d1"],
     case_ivposition),
    ("attach/detach --live of both models x%d, re-attach same names" %
     HOTPLUG_ROUNDS, ["d1"], case_hotplug),
    ("detach-device --live, eject through libvirt's monitor", ["d1"],
     case_detach_libvirt_monitor),
    ("save/restore of a master: memory comes back from the stream", ["d1"],
     case_save_restore),
    ("save of a peer refused, domain still running", ["d1"],
     case_save_peer_refused),
    ("migrate --live master between daemons, same memory file",
     ["d1", "d2"], case_migrate_same_file),
    ("migrate --live master between daemons, separate memory files",
     ["d1", "d3"], case_migrate_separate_files),
    ("migrate --live of a peer refused, source still running",
     ["d1", "d3"], case_migrate_peer_refused),
    ("migrate --live of a doorbell role=master refused (no master=on)",
     ["d1", "d3"], case_migrate_doorbell_master),
]


def cleanup():
    for d in daemons.values():
        try:
            d.stop()
        except Exception as e:
            print("# cleanup of %s: %s" % (d.name, e))
    for s in servers:
        s.stop()
    cleanup_mountpoints()
    if os.environ.get("LIBVIRT_KEEP_TMP"):
        print("# kept " + TOP)
    else:
        subprocess.run(["rm", "-rf", TOP])


def on_signal(sig, frame):
    raise KeyboardInterrupt("signal %d" % sig)


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    t0 = time.monotonic()
    passed = failed = skipped = 0
    print("1..%d" % len(CASES), flush=True)
    try:
        prepare_mountpoints()
        down = {}
        # d1 and d2 share a memory directory, d3 has its own
        for name, shm in (("d1", "shm-a"), ("d2", "shm-a"), ("d3", "shm-b")):
            d = Daemon(name, TOP, os.path.join(TOP, shm), QEMU)
            daemons[name] = d
            try:
                d.start()
            except Exception as e:
                down[name] = str(e)
                log("libvirtd %s: %s" % (name, e))
        for n, (title, needs, fn) in enumerate(CASES, 1):
            missing = [x for x in needs if x in down]
            if missing:
                print("ok %d - %s # SKIP libvirtd %s did not start" % (
                    n, title, ",".join(missing)), flush=True)
                skipped += 1
                continue
            t = time.monotonic()
            try:
                fn()
                print("ok %d - %s (%.1fs)" % (n, title, time.monotonic() - t),
                      flush=True)
                passed += 1
            except Exception as e:
                print("not ok %d - %s" % (n, title), flush=True)
                log(e if isinstance(e, Fail) else traceback.format_exc())
                failed += 1
    finally:
        cleanup()
    print("# total %.1fs" % (time.monotonic() - t0))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
