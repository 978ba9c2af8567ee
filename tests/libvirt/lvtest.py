# SPDX-License-Identifier: GPL-2.0-or-later
"""Private libvirt daemons for the libvirt end-to-end check.

Each Daemon is a libvirtd in its own mount namespace (unshare -m): its
/etc/libvirt, /var/lib/libvirt, /run/libvirt, /var/log/libvirt and
/var/cache/libvirt are bind mounts of directories under the run's
temporary directory, and so is /dev/shm (two daemons given the same shm
directory see the same memory files).  /etc/passwd and /etc/group are
bind-mounted copies with a libvirt-qemu user and group added when the
host has none, because libvirt 9.0 looks them up before it reads
qemu.conf.  Its sockets live in the temporary directory, so nothing of
a libvirt the host runs is touched.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import uuid

# Mount points libvirt uses as root.  Those missing on the host are
# created for the run and removed by cleanup_mountpoints().
LIBVIRT_DIRS = ["/etc/libvirt", "/var/lib/libvirt", "/run/libvirt",
                "/var/log/libvirt", "/var/cache/libvirt"]
_created_mountpoints = []


class Fail(Exception):
    pass


def deadline_wait(what, cond, timeout, interval=0.05):
    """Poll cond() until it returns something true, or fail after timeout."""
    end = time.monotonic() + timeout
    while True:
        r = cond()
        if r:
            return r
        if time.monotonic() > end:
            raise Fail("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(interval)


def prepare_mountpoints():
    for d in LIBVIRT_DIRS:
        if not os.path.isdir(d):
            os.makedirs(d)
            _created_mountpoints.append(d)


def cleanup_mountpoints():
    for d in reversed(_created_mountpoints):
        try:
            os.rmdir(d)
        except OSError:
            pass
    _created_mountpoints.clear()


def _with_libvirt_qemu(src, line, dst):
    with open(src) as f:
        text = f.read()
    if not any(ln.startswith("libvirt-qemu:") for ln in text.splitlines()):
        if text and not text.endswith("\n"):
            text += "\n"
        text += line + "\n"
    with open(dst, "w") as f:
        f.write(text)


class Daemon:
    def __init__(self, name, top, shm_dir, qemu):
        self.name = name
        self.top = os.path.join(top, name)
        self.shm_dir = shm_dir
        self.qemu = qemu
        self.proc = None
        self.dirs = {d: os.path.join(self.top, d.strip("/").replace("/", "-"))
                     for d in LIBVIRT_DIRS}
        self.sockdir = os.path.join(self.top, "sock")
        self.uri = "qemu+unix:///system?socket=%s/libvirt-sock" % self.sockdir
        self.log = os.path.join(self.top, "libvirtd.log")

    # paths as seen from outside the daemon's namespace
    def host_path(self, path):
        for d, h in self.dirs.items():
            if path == d or path.startswith(d + "/"):
                return h + path[len(d):]
        if path.startswith("/dev/shm/"):
            return os.path.join(self.shm_dir, path[len("/dev/shm/"):])
        return path

    def domain_log(self, dom):
        return self.host_path("/var/log/libvirt/qemu/%s.log" % dom)

    def qemu_pid(self, dom):
        try:
            with open(self.host_path("/run/libvirt/qemu/%s.pid" % dom)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def start(self):
        for h in self.dirs.values():
            os.makedirs(h, exist_ok=True)
        os.makedirs(self.sockdir, exist_ok=True)
        os.makedirs(self.shm_dir, exist_ok=True)
        etc = self.dirs["/etc/libvirt"]
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write('unix_sock_dir = "%s"\n' % self.sockdir)
            f.write('auth_unix_rw = "none"\nauth_unix_ro = "none"\n')
            f.write('host_uuid = "%s"\n' % uuid.uuid4())
            f.write('log_outputs = "3:file:%s"\n' % self.log)
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\n')
            f.write('dynamic_ownership = 0\nremember_owner = 0\n')
            f.write('security_driver = "none"\n')
            f.write('cgroup_controllers = [ ]\nnamespaces = [ ]\n')
            f.write('stdio_handler = "file"\n')
        with open(os.path.join(etc, "libvirt.conf"), "w") as f:
            f.write("")
        passwd = os.path.join(self.top, "passwd")
        group = os.path.join(self.top, "group")
        _with_libvirt_qemu("/etc/passwd",
                           "libvirt-qemu:x:64055:64055::/nonexistent:"
                           "/usr/sbin/nologin", passwd)
        _with_libvirt_qemu("/etc/group", "libvirt-qemu:x:64055:", group)
        mounts = ["mount --bind %s %s" % (h, d) for d, h in self.dirs.items()]
        mounts += ["mount --bind %s /etc/passwd" % passwd,
                   "mount --bind %s /etc/group" % group,
                   "mount --bind %s /dev/shm" % self.shm_dir]
        script = " && ".join(mounts) + \
            " && exec /usr/sbin/libvirtd -f %s/libvirtd.conf -p %s/pid" % (
                etc, self.top)
        out = open(os.path.join(self.top, "libvirtd.stderr"), "w")
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
        out.close()

        def up():
            if self.proc.poll() is not None:
                raise Fail("libvirtd %s exited with %s: %s" % (
                    self.name, self.proc.returncode, self.tail_log()))
            return self.virsh("list", "--all", check=False, timeout=10)[0] == 0
        deadline_wait("libvirtd %s to answer" % self.name, up, 30, 0.1)

    def tail_log(self, n=20):
        text = ""
        for p in (os.path.join(self.top, "libvirtd.stderr"), self.log):
            try:
                with open(p) as f:
                    text += "".join(f.readlines()[-n:])
            except OSError:
                pass
        return text

    def virsh(self, *args, check=True, timeout=60):
        try:
            p = subprocess.run(["virsh", "-q", "-c", self.uri] + list(args),
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fail("virsh %s: no answer in %gs" % (" ".join(args), timeout))
        if check and p.returncode != 0:
            raise Fail("virsh %s failed (%d): %s" % (
                " ".join(args), p.returncode, (p.stderr + p.stdout).strip()))
        return p.returncode, p.stdout, p.stderr

    def hmp(self, dom, cmd):
        return self.virsh("qemu-monitor-command", dom, "--hmp", cmd)[1]

    def qmp(self, dom, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        out = self.virsh("qemu-monitor-command", dom, json.dumps(msg))[1]
        return json.loads(out)["return"]

    def domains(self):
        rc, out, _ = self.virsh("list", "--all", "--name", check=False)
        return [ln.strip() for ln in out.splitlines() if ln.strip()] \
            if rc == 0 else []

    def state(self, dom):
        rc, out, _ = self.virsh("domstate", dom, check=False)
        return out.strip() if rc == 0 else None

    def destroy_all(self):
        for dom in self.domains():
            self.virsh("destroy", dom, check=False, timeout=30)
            self.virsh("undefine", dom, check=False, timeout=30)

    def stop(self):
        if self.proc is None:
            return
        try:
            self.destroy_all()
        except Exception:
            pass
        # QEMUs the daemon may have left behind
        qdir = self.host_path("/run/libvirt/qemu")
        pids = []
        if os.path.isdir(qdir):
            for fn in os.listdir(qdir):
                if fn.endswith(".pid"):
                    try:
                        with open(os.path.join(qdir, fn)) as f:
                            pids.append(int(f.read().strip()))
                    except (OSError, ValueError):
                        pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pid in pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if self.qemu.encode() not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc = None


def domain_xml(name, qemu, shmems, memory_mib=64):
    return """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>%s</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
%s
  </devices>
</domain>
""" % (name, memory_mib, qemu, "\n".join(shmems))


def shmem_xml(name, model, role=None, server=None, vectors=2, size_mib=4):
    r = " role='%s'" % role if role else ""
    if model == "ivshmem-plain":
        return ("    <shmem name='%s'%s><model type='ivshmem-plain'/>"
                "<size unit='M'>%d</size></shmem>" % (name, r, size_mib))
    return ("    <shmem name='%s'%s><model type='ivshmem-doorbell'/>"
            "<server path='%s'/><msi vectors='%d' ioeventfd='on'/></shmem>"
            % (name, r, server, vectors))


def cmdline_json(pid, option):
    """The JSON arguments of every `option` (e.g. -device) of process pid."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().decode().split("\0")
    out = []
    for i, a in enumerate(argv[:-1]):
        if a == option and argv[i + 1].startswith("{"):
            out.append(json.loads(argv[i + 1]))
    return out, argv
