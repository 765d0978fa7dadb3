"""Remote inference over openpi's websocket protocol: our codec is openpi-client's byte for byte and refuses
malformed frames; our server answers our client and openpi's own client with the local backend's chunk."""

from __future__ import annotations

import math
import time
import urllib.request

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wall_oss_ros.policy.backend import Observation, RtcRequest
from wall_oss_ros.policy.remote import openpi_codec
from wall_oss_ros.policy.remote.openpi_backend import OpenpiBackend, RemotePolicyError
from wall_oss_ros.policy.remote.openpi_messages import parse_request, request_message
from wall_oss_ros.policy.remote.server import PolicyServer

openpi_msgpack = pytest.importorskip("openpi_client.msgpack_numpy", reason="openpi-client (make setup installs it)")

ARM = [0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.5]


def observation(seed: int = 0, stamp_ns: int | None = 1_700_000_000_123_456_789) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation({"top": rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)}, np.array(ARM * 2),
                       "insert the peg", stamp_ns)


# ---------------------------------------------------------------- codec
def test_frames_are_openpi_clients_byte_for_byte_both_ways():
    message = request_message(observation(), RtcRequest(np.arange(28.0).reshape(2, 14), 1))
    message["scalar"] = np.float32(2.5)
    ours = openpi_codec.packb(message)
    assert ours == openpi_msgpack.packb(message)
    back = openpi_codec.unpackb(openpi_msgpack.packb(message))
    theirs = openpi_msgpack.unpackb(ours)
    for decoded in (back, theirs):
        np.testing.assert_array_equal(decoded["images"]["top"], message["images"]["top"])
        np.testing.assert_array_equal(decoded["rtc"]["committed"], message["rtc"]["committed"])
        assert decoded["prompt"] == "insert the peg" and decoded["scalar"] == np.float32(2.5)


@pytest.mark.parametrize(("frame", "message"), [
    (b"\xc1", "malformed"),
    ("text", "binary frame"),
    (openpi_msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": (1,)}), "dtype"),
    (openpi_msgpack.packb({b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "<f8", b"shape": (2,)}), "needs 16"),
    (openpi_msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "<f8", b"shape": (-1,)}), "shape"),
    (openpi_msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "<f8", b"shape": (2**40, 2**40)}), "needs"),
    (openpi_msgpack.packb({b"__ndarray__": True, b"data": b"", b"dtype": "V8", b"shape": (0,)}), "dtype"),
])
def test_a_malformed_frame_is_a_protocol_error_saying_what(frame, message):
    with pytest.raises(openpi_codec.ProtocolError, match=message):
        openpi_codec.unpackb(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=512), cut=st.integers(0, 4096), flip=st.integers(0, 4096))
def test_no_frame_crashes_the_decoders(data, cut, flip):
    """Random bytes, and valid requests truncated or with a byte changed: a ProtocolError or a value, nothing
    else; a decoded value is a request or a ProtocolError saying why not."""
    valid = bytearray(openpi_codec.packb(request_message(observation(), None)))
    mutated = bytearray(valid[: cut % (len(valid) + 1)])
    if mutated:
        mutated[flip % len(mutated)] ^= 0x5A
    for frame in (bytes(data), bytes(mutated)):
        try:
            decoded = openpi_codec.unpackb(frame)
            parse_request(decoded)
        except openpi_codec.ProtocolError:
            pass


# ---------------------------------------------------------------- server and clients
@pytest.fixture(scope="module")
def server(backend):
    srv = PolicyServer(backend, port=0, api_key="s3cret")
    srv.start()
    yield srv
    srv.stop()


def test_our_client_gets_the_local_backends_chunk(server, backend, aloha):
    client = OpenpiBackend(f"ws://127.0.0.1:{server.port}", aloha, api_key="s3cret", timeout_s=60.0)
    client.warmup()
    assert client.horizon == backend.horizon and client.metadata["contract"] == "aloha_bimanual"
    local = backend.infer(observation())
    remote = client.infer(observation())
    np.testing.assert_array_equal(remote.actions, local.actions)  # same observation and stamp: same noise
    assert remote.action_names == local.action_names and remote.denoising_steps == local.denoising_steps
    np.testing.assert_array_equal(remote.state, local.state)
    rtc = RtcRequest(local.actions[:10], 3)
    np.testing.assert_array_equal(client.infer(observation(), rtc).actions, backend.infer(observation(), rtc).actions)
    assert client.round_trip_s > 0
    client.close()


def test_openpis_own_client_is_served(server, aloha):
    websocket_client_policy = pytest.importorskip("openpi_client.websocket_client_policy")
    policy = websocket_client_policy.WebsocketClientPolicy("127.0.0.1", server.port, api_key="s3cret")
    assert policy.get_server_metadata()["action_names"] == list(aloha.action_names)
    obs = observation(stamp_ns=None)
    reply = policy.infer({"images": obs.images, "state": obs.state, "prompt": obs.instruction})
    assert reply["actions"].shape == (server.backend.horizon, 14) and np.all(np.isfinite(reply["actions"]))
    assert reply["server_timing"]["infer_ms"] > 0


def test_health_check_and_the_api_key(server, aloha):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as reply:
        assert reply.status == 200 and reply.read() == b"OK\n"
    for key in (None, "wrong"):
        client = OpenpiBackend(f"ws://127.0.0.1:{server.port}", aloha, api_key=key)
        with pytest.raises(RemotePolicyError, match="cannot connect"):
            client.warmup()


def test_a_request_the_server_cannot_use_is_a_server_error_and_no_chunk(server, aloha):
    client = OpenpiBackend(f"ws://127.0.0.1:{server.port}", aloha, api_key="s3cret", timeout_s=60.0)
    bad = Observation({"top": np.zeros((8, 8, 3), dtype=np.uint8)}, np.zeros(3), "x")  # wrong state width
    with pytest.raises(RemotePolicyError, match="server error"):
        client.infer(bad)
    assert client.infer(observation()).actions.shape[1] == 14  # reconnected (after the backoff) and served


def test_a_server_that_is_gone_fails_fast_and_backs_off(backend, aloha):
    srv = PolicyServer(backend, port=0)
    port = srv.start()
    client = OpenpiBackend(f"ws://127.0.0.1:{port}", aloha, timeout_s=60.0, backoff_s=0.5)
    client.warmup()
    srv.stop()
    start = time.monotonic()
    with pytest.raises(RemotePolicyError):
        client.infer(observation())
    with pytest.raises(RemotePolicyError, match="cannot connect"):
        client.infer(observation())
    with pytest.raises(RemotePolicyError, match="next attempt in"):  # within the backoff: not even tried
        client.infer(observation())
    assert time.monotonic() - start < 10.0


def test_the_client_refuses_a_uri_that_is_not_a_websocket(aloha):
    with pytest.raises(ValueError, match="ws://"):
        OpenpiBackend("http://127.0.0.1:8000", aloha)


def test_wall_oss_ros_serve_runs_as_its_own_process(tiny_checkpoint, aloha):
    """The command a GPU box runs: healthy, serving our client, refusing a client without the key, and gone
    on Ctrl-C."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "WALL_OSS_TEST_KEY": "k3y"}
    proc = subprocess.Popen([sys.executable, "-m", "wall_oss_ros.tools.cli", "serve", str(tiny_checkpoint),
                             "--port", str(port), "--device", "cpu", "--api-key-env", "WALL_OSS_TEST_KEY"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.5)
        client = OpenpiBackend(f"ws://127.0.0.1:{port}", aloha, api_key="k3y", timeout_s=60.0)
        assert client.infer(observation()).actions.shape == (client.horizon, 14)
        client.close()
        with pytest.raises(RemotePolicyError, match="cannot connect"):
            OpenpiBackend(f"ws://127.0.0.1:{port}", aloha).warmup()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()


def test_our_client_reads_an_openpi_server_made_of_openpi_clients_codec(aloha):
    """openpi's serving loop (metadata frame first, `server_timing` added, a failure as the traceback in a
    text frame then close 1011) with openpi-client's own msgpack-numpy, and a policy that answers as
    openpi's do: only `actions`, float32, no names (taken in the contract's order)."""
    from test.support.serving_standin import StandinServer

    class Policy:
        fail = False

        def infer(self, obs: dict) -> dict:
            if self.fail:
                raise RuntimeError("policy exploded (stand-in)")
            state = np.asarray(obs["state"], dtype=np.float32)
            assert obs["images"]["top"].shape == (120, 160, 3) and obs["prompt"] == "insert the peg"
            return {"actions": state[None, :] + 0.01 * np.arange(1, 11, dtype=np.float32)[:, None]}

    policy = Policy()
    server = StandinServer(policy, metadata={"policy": "pi0_aloha"}, packb=openpi_msgpack.packb,
                           unpackb=openpi_msgpack.unpackb)
    port = server.start()
    try:
        client = OpenpiBackend(f"ws://127.0.0.1:{port}", aloha, timeout_s=30.0, backoff_s=0.01)
        result = client.infer(observation())
        assert client.metadata == {"policy": "pi0_aloha"} and client.horizon == 10
        np.testing.assert_allclose(result.actions, np.array(ARM * 2)[None, :] + 0.01 * np.arange(1, 11)[:, None],
                                   rtol=1e-6)
        assert result.action_names == aloha.action_names
        policy.fail = True
        with pytest.raises(RemotePolicyError, match=r"server error.*policy exploded"):
            client.infer(observation())
        policy.fail = False
        time.sleep(0.05)
        assert client.infer(observation()).actions.shape == (10, 14)  # reconnected
    finally:
        server.stop()


_numbers = st.floats(allow_nan=True, allow_infinity=True, width=64)
_values = st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 5), _numbers,
                    st.lists(st.text(max_size=12), max_size=15),
                    st.builds(lambda r, w: np.resize(np.asarray(r, dtype=np.float64), (len(r) // w, w)),
                              st.lists(_numbers, max_size=60), st.sampled_from([1, 7, 14])))


_fields = st.sampled_from(["actions", "action_names", "state", "state_names", "dt_s", "denoising_steps",
                           "rtc_prefix_steps", "subtask", "other"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])
@given(reply=st.one_of(_values, st.dictionaries(_fields, _values)), changes=st.dictionaries(_fields, _values),
       dropped=st.lists(_fields, max_size=3))
def test_no_reply_crashes_the_clients_parser(aloha, reply, changes, dropped):
    """Whatever a server sends back — random, or a valid reply with fields changed or dropped: a chunk of
    finite numbers in the contract's shape, with a valid step duration and state, or a ProtocolError saying
    why not."""
    from wall_oss_ros.policy.remote.openpi_messages import parse_response

    valid = {"actions": np.zeros((4, 14)), "action_names": list(aloha.action_names), "dt_s": 0.02,
             "state": np.zeros(14), "state_names": list(aloha.action_names), "denoising_steps": 10}
    mutated = {k: v for k, v in {**valid, **changes}.items() if k not in dropped}
    for message in (reply, mutated):
        try:
            result = parse_response(message, aloha.action_names, 0.0, 0.0, aloha.dt_s)
        except openpi_codec.ProtocolError:
            continue
        assert result.actions.shape[1] == 14 and np.all(np.isfinite(result.actions))
        assert math.isfinite(result.dt_s) and result.dt_s > 0 and len(result.state) == len(result.state_names)
