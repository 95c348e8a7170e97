"""The rig the A/B benches share (ab_*.py, login_steps.py, session_memory.py): one run
directory taken under its lock, the customer keys and their domains, the shared guests, the
load generator, and xcg servers started and stopped one setting at a time, the settings
alternated round by round so that a loaded machine weighs on both alike."""

import contextlib
import fcntl
from pathlib import Path

import procs
import servers
from loadgen_client import LoadGen
from servers import Guests, Layout, XcgServer, make_domains


def add_dir_argument(parser):
    parser.add_argument("--dir", type=Path, default=servers.RUN,
                        help="the run's files (default: the other benches'; another keeps clear of them)")


def add_before_argument(parser):
    parser.add_argument("--before", help="another xcg binary (its xcg-session beside it), alternated")


def builds(before):
    """[(label, xcg binary or None for the build's)]: one, or the two to alternate."""
    return [("before", before), ("after", None)] if before else [("this", None)]


def alternated(rounds, settings):
    """(round, setting) in run order: the order swapped every other round, so neither setting
    always runs first."""
    for round_ in range(rounds):
        for setting in settings if round_ % 2 == 0 else settings[::-1]:
            yield round_, setting


class Rig:
    """A fresh run directory with N domains and their guests; use it in a `with` block, which
    runs the guests. The lock sits beside the directory: two runs in one directory would
    delete each other's files, runs in different ones may overlap."""

    def __init__(self, build, run_dir=None, domains=1):
        self.build = build
        self._lock = open(Path(f"{run_dir or servers.RUN}.lock"), "w")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        procs.become_subreaper()
        servers.RUN = run_dir or servers.RUN  # Layout's root
        self.layout = Layout()
        self.layout.create(build)
        self.work = self.layout.xcg
        self.domains = make_domains(build, self.layout, domains)
        self.loadgen = LoadGen(build / "bench" / "xcg-loadgen", self.layout.keys, open(self.work / "loadgen.log", "wb"))
        self.guests = Guests(build, self.layout, domains, self.work / "guests.log")

    def __enter__(self):
        self.guests.start()
        return self

    def __exit__(self, *_):
        self.guests.stop()

    def server(self, label, binary=None, server_class=XcgServer, **kwargs):
        """An xcg server of `binary` (the build's xcg by default), configured and started."""
        server = server_class(self.build, self.layout, self.domains, self.work, binary=binary, name=label, **kwargs)
        server.write_config()
        server.start()
        return server

    @contextlib.contextmanager
    def serving(self, label, binary=None, server_class=XcgServer, **kwargs):
        server = self.server(label, binary, server_class, **kwargs)
        try:
            yield server
        finally:
            server.stop()
