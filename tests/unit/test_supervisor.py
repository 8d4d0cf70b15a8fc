"""The supervisor in `custody up` restarts its children without starving any of them."""
from __future__ import annotations

from custody.supervisor import Supervisor


class FakeChild:
    def __init__(self, name: str):
        self.name = name
        self.running = True
        self.starts: list[float] = []
        self.process = None
        self.restarts = 0
        self.started_at = 0.0
        self.failures_in_a_row = 0
        self.restart_at = None
        self.requires = None

    def healthy(self) -> bool:
        return self.running

    def alive(self) -> bool:
        return self.running

    def start(self) -> None:
        self.running = True
        self.starts.append(now[0])


now = [0.0]


def supervisor(*children) -> Supervisor:
    return Supervisor(list(children), clock=lambda: now[0])


def test_a_child_that_ran_for_a_while_is_restarted_at_once_however_often_it_died_before():
    now[0] = 0.0
    serve = FakeChild("serve")
    watch = supervisor(serve)
    for kill in range(25):  # killed every two minutes, as the soak does
        now[0] += 120
        serve.running = False
        watch.check_once()
        assert serve.starts[-1] == now[0], f"restart {kill + 1} was delayed"
    assert serve.restarts == 25


def test_a_crash_loop_backs_off_and_does_not_delay_the_other_child():
    now[0] = 1000.0
    server, serve = FakeChild("server"), FakeChild("serve")
    server.started_at = serve.started_at = 0.0
    watch = supervisor(server, serve)
    server.running = False
    watch.check_once()
    assert server.starts == [1000.0]          # first failure after a long run: at once
    server.running = False                     # dies again immediately
    watch.check_once()
    assert server.starts == [1000.0] and server.restart_at == 1004.0  # 2 s, 4 s, ... up to 30 s
    serve.running = False                      # meanwhile the other child dies
    watch.check_once()
    assert serve.starts == [1000.0]            # restarted at once, not behind the server's pause
    now[0] = 1004.0
    watch.check_once()
    assert server.starts == [1000.0, 1004.0]
    for _ in range(10):
        server.running = False
        watch.check_once()
        now[0] = server.restart_at
        watch.check_once()
    pauses = [b - a for a, b in zip(server.starts, server.starts[1:])]
    assert max(pauses) == 30 and pauses == sorted(pauses)


def test_the_serve_process_waits_for_a_healthy_server_instead_of_failing_against_it():
    now[0] = 500.0
    server, serve = FakeChild("server"), FakeChild("serve")
    serve.requires = server
    watch = supervisor(server, serve)
    server.running = serve.running = False  # the server was killed; serve fell over with it
    server.restart_at = 10**9              # and the server is still in its pause
    watch.check_once()
    assert serve.starts == []               # not started against a dead server (it would exit at once)
    server.restart_at = None
    server.running = True
    watch.check_once()
    assert serve.starts == [500.0] and serve.failures_in_a_row == 1
