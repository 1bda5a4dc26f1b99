"""A throwaway single-node Slurm cluster on this machine, for the Slurm test.

Not a test module: ``tests/test_zz_slurm.py`` uses it through a fixture.
It follows the tested recipe of the ecosystem spec (§2.6):

1. :func:`skip_reason` says why the cluster cannot be started here (not root,
   not Debian, no apt-get, ``IMPLICIT_REG_SLURM_TEST`` not ``1``, a Slurm daemon
   already listening); the fixture turns that into ``pytest.skip``.
2. :func:`ensure_packages` installs Debian's ``slurm-wlm slurmctld slurmd
   slurm-client munge`` (``--no-install-recommends``, ~10 s) when one is
   missing; :func:`ensure_plugin` installs ``requirements-slurm.txt`` into
   the running interpreter's environment when the executor plugin is missing
   (and :func:`remove_plugin` uninstalls it again at the end).
3. :class:`LocalSlurm` writes ``/etc/slurm/slurm.conf`` and ``gres.conf``
   (fake GPUs: ``File=/dev/null``, ``/dev/zero``...), after moving existing
   ones aside, starts munged (as the munge user, unless one is already
   running), ``slurmctld -D`` and ``slurmd -D`` in the background, keeps
   their PIDs and waits until ``sinfo`` shows the node idle. State, spool and log files live in a
   temporary directory. (``SLURM_CONF`` pointing at a private file is not
   enough: slurm-jobstep 0.6.1 removes every ``SLURM_*`` variable but a few
   job ids from the environment of the ``srun`` it runs inside each job, so
   that ``srun`` only finds the default ``/etc/slurm/slurm.conf``.)
4. :meth:`LocalSlurm.stop` cancels the jobs still on the cluster, stops
   slurmd, slurmctld and munged (only if it started it), each by its PID, and
   puts the original ``/etc/slurm`` files back (or removes its own). A file
   left behind by a killed run is recognised by its first line and replaced.

Nothing is purged afterwards: the Debian packages stay installed. That is
harmless once ``/etc/slurm/slurm.conf`` is gone again: the plugin's
import-time ``scontrol show config`` then fails at once instead of waiting
10 s for a controller that is not there (measured: 0.01 s vs. +10 s per
snakemake command). The executor plugin is uninstalled again if the fixture
installed it (it adds pandas to every snakemake start). The test module runs
last anyway (``test_zz_...``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APT_PACKAGES = ("slurm-wlm", "slurmctld", "slurmd", "slurm-client", "munge")
PLUGIN_MODULE = "snakemake_executor_plugin_slurm"
# Opt-in: the test installs packages and rewrites /etc/slurm, so only "1" runs it (.ci/run sets it).
ENV_SWITCH = "IMPLICIT_REG_SLURM_TEST"
PARTITION = "debug"
CTLD_PORT, SLURMD_PORT = 6817, 6818
MUNGE_PIDFILE = Path("/run/munge/munged.pid")
SLURM_ETC = Path("/etc/slurm")
CONFIG_FILES = ("slurm.conf", "gres.conf")
# Device files standing in for GPUs: Slurm only needs them to exist (no
# cgroup device constraint with TaskPlugin=task/none); it hands out their
# indices as CUDA_VISIBLE_DEVICES. torch, finding no CUDA, uses the CPU.
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")
MARKER = "# Written by tests/slurm_cluster.py"  # first line of the files this module writes


class SlurmSetupError(RuntimeError):
    """The local cluster could not be installed or started (a real failure, not a skip)."""


def _run(cmd: list[str], timeout: float = 60, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def skip_reason() -> str | None:
    """Why the local cluster cannot be used here, or ``None`` when it can."""
    if os.environ.get(ENV_SWITCH) != "1":
        return (f"the Slurm cluster test installs packages and rewrites /etc/slurm: it runs only with "
                f"{ENV_SWITCH}=1 (.ci/run sets it)")
    if not sys.platform.startswith("linux") or not Path("/etc/debian_version").exists():
        return "the local Slurm test needs Debian (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the local Slurm test must run as root (it installs and starts slurmctld, slurmd and munged)"
    if missing_packages() and shutil.which("apt-get") is None:
        return f"Slurm packages missing and apt-get unavailable: {' '.join(missing_packages())}"
    for port in (CTLD_PORT, SLURMD_PORT):
        if _port_in_use(port):
            return f"port {port} is in use (a Slurm daemon already runs here); not touching it"
    return None


def missing_packages() -> list[str]:
    missing = []
    for pkg in APT_PACKAGES:
        out = _run(["dpkg-query", "-W", "-f=${Status}", pkg]) if shutil.which("dpkg-query") else None
        if out is None or "install ok installed" not in out.stdout:
            missing.append(pkg)
    return missing


def ensure_packages() -> float:
    """apt-get install the Slurm and munge packages if one is missing; returns seconds spent."""
    missing = missing_packages()
    if not missing:
        return 0.0
    t0 = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    out = _run(install, timeout=900, env=env)
    if out.returncode != 0:  # stale or missing package lists: update once, retry
        upd = _run(["apt-get", "update", "-q"], timeout=600, env=env)
        if upd.returncode != 0:
            raise SlurmSetupError(f"apt-get update failed:\n{upd.stdout[-2000:]}{upd.stderr[-2000:]}")
        out = _run(install, timeout=900, env=env)
    if out.returncode != 0:
        raise SlurmSetupError(f"apt-get install {' '.join(APT_PACKAGES)} failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    if missing_packages():
        raise SlurmSetupError(f"still missing after apt-get install: {missing_packages()}")
    return time.monotonic() - t0


def _installed(python: str) -> set[str]:
    out = _run([python, "-m", "pip", "list", "--disable-pip-version-check", "--format=freeze"], timeout=120)
    return {line.split("==")[0].lower() for line in out.stdout.splitlines() if "==" in line}


def ensure_plugin(python: str = sys.executable) -> list[str]:
    """pip install requirements-slurm.txt into ``python``'s environment if the plugin is missing.

    Returns the distributions this added (empty if the plugin was there), for :func:`remove_plugin`.
    """
    probe = _run([python, "-c", f"import importlib.util,sys; sys.exit(importlib.util.find_spec('{PLUGIN_MODULE}') is None)"])
    if probe.returncode == 0:
        return []
    before = _installed(python)
    out = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r",
                str(REPO / "requirements-slurm.txt")], timeout=900)
    if out.returncode != 0:
        raise SlurmSetupError(f"pip install -r requirements-slurm.txt failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    importlib.invalidate_caches()
    return sorted(_installed(python) - before)


def remove_plugin(added: list[str], python: str = sys.executable) -> None:
    """Uninstall what :func:`ensure_plugin` added: every snakemake start imports an
    installed executor plugin, and this one imports pandas (~0.5-1.5 s per command)."""
    if added:
        _run([python, "-m", "pip", "uninstall", "-y", "-q", "--disable-pip-version-check", *added], timeout=300)


def _pid_alive(pid: int, comm: str | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
        return False
    if comm is not None:  # guard against a recycled PID
        return stat[stat.index("(") + 1 : stat.rindex(")")] == comm
    return True


def _stop_pid(pid: int, comm: str | None, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM one process by PID, SIGKILL it after ``timeout`` seconds."""
    if not _pid_alive(pid, comm):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return
        if proc is None and not _pid_alive(pid, comm):
            return
        time.sleep(0.2)
    if _pid_alive(pid, comm):
        os.kill(pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=10)


def node_hardware() -> dict[str, int]:
    """CPUs and RealMemory (MB) as ``slurmd -C`` reports them."""
    out = _run(["slurmd", "-C"])
    fields = dict(re.findall(r"(\w+)=(\S+)", out.stdout))
    if "CPUs" not in fields or "RealMemory" not in fields:
        raise SlurmSetupError(f"could not parse `slurmd -C`:\n{out.stdout}{out.stderr}")
    return {"cpus": int(fields["CPUs"]), "real_memory": int(fields["RealMemory"])}


@dataclass
class LocalSlurm:
    """A single-node cluster (partition ``debug``, ``gpus`` fake GPUs); state and logs under ``root``."""

    root: Path
    node: str = field(default_factory=lambda: _run(["hostname", "-s"]).stdout.strip())
    cpus: int = 0
    real_memory: int = 0
    gpus: int = 1  # fake GPUs: one gres.conf line per device file in FAKE_GPU_FILES
    setup_summary: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _started_munged: bool = False
    _config_written: bool = False

    @property
    def env(self) -> dict[str, str]:
        """The calling environment without ``SLURM_CONF``: the clients read /etc/slurm/slurm.conf."""
        env = dict(os.environ)
        env.pop("SLURM_CONF", None)
        return env

    # ------------------------------------------------------------------ config
    def write_config(self) -> None:
        """Write /etc/slurm/slurm.conf and gres.conf; existing ones are moved to ``root/etc-backup``."""
        hw = node_hardware()
        self.cpus = hw["cpus"]
        # Below what slurmd -C reports (the recipe: 20000 of 24105), or slurmd
        # registers with less memory than configured and the node is drained.
        self.real_memory = min(int(hw["real_memory"] * 0.85), hw["real_memory"] - 512)
        for sub in ("etc-backup", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        SLURM_ETC.mkdir(parents=True, exist_ok=True)
        for name in CONFIG_FILES:
            path = SLURM_ETC / name
            if path.exists() and not path.read_text(errors="replace").startswith(MARKER):
                shutil.copy2(path, self.root / "etc-backup" / name)  # restored by restore_config()
        self._config_written = True
        r = self.root
        (SLURM_ETC / "slurm.conf").write_text(f"""\
{MARKER} for the Slurm integration test (tests/test_zz_slurm.py).
# The test restores the previous file (or removes this one) when it stops the cluster.
ClusterName=implicitreg
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={CTLD_PORT}
SlurmdPort={SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# MinJobAge stays at its default (300 s): the plugin's squeue status command
# needs finished jobs to stay visible; below 3 x the initial status interval it
# falls back to sacct, which fails without accounting.
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.real_memory} Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName={PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        (SLURM_ETC / "gres.conf").write_text(f"{MARKER}: {self.gpus} fake GPU(s).\n" + "".join(
            f"NodeName={self.node} Name=gpu File={dev}\n" for dev in FAKE_GPU_FILES[: self.gpus]))

    def restore_config(self) -> None:
        """Put back the /etc/slurm files found before :meth:`write_config`, or remove ours."""
        if not self._config_written:
            return
        for name in CONFIG_FILES:
            backup, path = self.root / "etc-backup" / name, SLURM_ETC / name
            if backup.exists():
                shutil.copy2(backup, path)
            elif path.exists() and path.read_text(errors="replace").startswith(MARKER):
                path.unlink()
        self._config_written = False

    # ------------------------------------------------------------------ munge
    def _munge_ok(self) -> bool:
        if shutil.which("munge") is None or shutil.which("unmunge") is None:
            return False
        enc = _run(["munge", "-n"], timeout=10)
        if enc.returncode != 0:
            return False
        dec = _run(["unmunge"], timeout=10, input=enc.stdout)
        return dec.returncode == 0 and "Success" in dec.stdout

    def start_munge(self) -> None:
        if self._munge_ok():  # someone else's munged: use it, leave it running
            return
        for d in ("/run/munge", "/var/lib/munge", "/var/log/munge", "/etc/munge"):
            Path(d).mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            out = _run(["mungekey", "--create"])
            if out.returncode != 0:
                raise SlurmSetupError(f"mungekey --create failed: {out.stderr}")
            shutil.chown("/etc/munge/munge.key", "munge", "munge")
        MUNGE_PIDFILE.unlink(missing_ok=True)
        out = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], timeout=30)
        if out.returncode != 0:
            raise SlurmSetupError(f"munged did not start: {out.stdout}{out.stderr}")
        self._started_munged = True  # daemonises: its PID is in the pid file
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if MUNGE_PIDFILE.exists() and self._munge_ok():
                self.pids["munged"] = int(MUNGE_PIDFILE.read_text().split()[0])
                return
            time.sleep(0.2)
        raise SlurmSetupError("munged started but `munge -n | unmunge` does not succeed")

    # ------------------------------------------------------------------ daemons
    def _spawn(self, name: str, cmd: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.stdout", "w")
        # Own session: a Ctrl-C in the terminal reaches pytest, whose teardown stops it.
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        out.close()
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            raise SlurmSetupError(f"{name} exited with code {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        text = ""
        for path in (self.root / "log" / f"{name}.log", self.root / "log" / f"{name}.stdout"):
            if path.exists():
                text += f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def slurm(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        return _run(list(cmd), timeout=timeout, env=self.env)

    def node_state(self) -> str:
        out = self.slurm("sinfo", "-h", "-N", "-o", "%T")
        return out.stdout.strip() if out.returncode == 0 else ""

    def start(self, timeout: float = 90) -> float:
        """Configure and start munged, slurmctld and slurmd; return seconds until the node is idle."""
        t0 = time.monotonic()
        self.write_config()
        self.start_munge()
        # -D: stay in the foreground, so the Popen PID is the daemon's PID.
        self._spawn("slurmctld", ["slurmctld", "-D"])
        deadline = time.monotonic() + timeout
        while "is UP" not in self.slurm("scontrol", "ping").stdout:
            self._check_alive("slurmctld")
            if time.monotonic() > deadline:
                raise SlurmSetupError(f"slurmctld does not answer `scontrol ping`:\n{self.log_tail('slurmctld')}")
            time.sleep(0.5)
        self._spawn("slurmd", ["slurmd", "-D"])
        while self.node_state() != "idle":
            self._check_alive("slurmctld")
            self._check_alive("slurmd")
            if time.monotonic() > deadline:
                raise SlurmSetupError(
                    f"node {self.node} not idle (sinfo: {self.node_state()!r}):\n"
                    f"{self.log_tail('slurmctld')}{self.log_tail('slurmd')}")
            time.sleep(0.5)
        return time.monotonic() - t0

    def smoke(self) -> str:
        """``srun --gpus=1``: the fake GPU is schedulable; returns CUDA_VISIBLE_DEVICES as seen by the job."""
        out = self.slurm("srun", "-N1", "-n1", "--gpus=1", "--mem=100", "-t", "1",
                         "printenv", "CUDA_VISIBLE_DEVICES", timeout=60)
        if out.returncode != 0:
            raise SlurmSetupError(f"srun --gpus=1 failed: {out.stdout}{out.stderr}\n{self.log_tail('slurmd')}")
        return out.stdout.strip()

    def cancel_all(self, timeout: float = 60) -> None:
        """Cancel every job on this (private) cluster and wait until the queue is empty."""
        if "slurmctld" not in self._procs or self._procs["slurmctld"].poll() is not None:
            return
        ids = self.slurm("squeue", "-h", "-t", "PD,R,CG,CF,S", "-o", "%i").stdout.split()
        if not ids:
            return
        self.slurm("scancel", *ids)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.slurm("squeue", "-h", "-t", "PD,R,CG,CF,S", "-o", "%i").stdout.strip():
            time.sleep(1)

    def stop(self) -> None:
        """Cancel leftover jobs, stop slurmd, slurmctld and munged by their PIDs, restore /etc/slurm."""
        try:
            self.cancel_all()
        finally:
            try:
                for name in ("slurmd", "slurmctld"):
                    if name in self.pids:
                        _stop_pid(self.pids[name], name, proc=self._procs.get(name))
                if self._started_munged and "munged" in self.pids:
                    # munged is not our child: under the sandbox's init it may stay a
                    # zombie after exiting, which is harmless.
                    _stop_pid(self.pids["munged"], "munged")
            finally:
                self.restore_config()
