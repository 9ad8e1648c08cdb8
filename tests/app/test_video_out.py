"""Live video out (app/video_out.py): the picture as an NDI source, received on 127.0.0.1 by
cyndilib's own receiver, as TouchDesigner or OBS would take it: the frames arrive, they are the
picture the loop draws (top row at the top), and the loop pays for them. NDI finds its sources by
mDNS, which this machine may not answer; an NDI configuration naming 127.0.0.1 as the only
address to look at (NDI_CONFIG_DIR) keeps discovery on this machine."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

from tests.app.app_helpers import TINY_SCENE, solver_and_view

cyndilib = pytest.importorskip("cyndilib", reason="the ndi extra (cyndilib) is not installed")


@pytest.fixture(scope="module")
def ndi_here(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ndi")
    (folder / "ndi-config.v1.json").write_text(json.dumps(
        {"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}, "multicast": {"send": {"enable": False}}}}))
    before = os.environ.get("NDI_CONFIG_DIR")
    os.environ["NDI_CONFIG_DIR"] = str(folder)
    yield
    if before is None:
        os.environ.pop("NDI_CONFIG_DIR", None)
    else:
        os.environ["NDI_CONFIG_DIR"] = before


def test_the_picture_is_an_ndi_source_a_receiver_takes(ndi_here, tmp_path):
    from cyndilib import Finder, Receiver, RecvBandwidth, RecvColorFormat, VideoRecvFrame
    from cyndilib.receiver import ReceiveFrameType

    from waterrock.app.console import close_console, open_console
    from waterrock.app.loop import FrameLoop
    from waterrock.app.video_out import NdiOut
    from waterrock.scene import load_scene

    name = f"waterrock test {os.getpid()}"
    text = TINY_SCENE + (f'\n[console]\nstatus_port = 0\nosc_port = 0\noscquery_port = 0\nwatch_scene = false\n'
                         f'ndi = "{name}"\n')
    path = tmp_path / "tiny_ndi.toml"
    path.write_text(text, encoding="utf-8")
    scene = load_scene(path)
    solver, view = solver_and_view(scene)
    services = open_console(scene, view)
    finder = Finder()
    receiver = None
    try:
        (out,) = services
        assert isinstance(out, NdiOut) and out.size == view.renderer.size
        loop = FrameLoop(solver, None, view, realtime=False, console=services)
        shown = []  # every picture the loop drew
        for _ in range(12):  # lines of a dozen positions
            loop.tick()
            shown.append(view.read_pixels().astype(int))
        finder.open()
        end = time.monotonic() + 10.0
        while not (found := [n for n in finder.get_source_names() if name in n]):
            assert time.monotonic() < end, f"no NDI source named {name!r} found: {finder.get_source_names()}"
            finder.wait_for_sources(0.5)
        receiver = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
        frame = VideoRecvFrame()
        receiver.set_video_frame(frame)
        receiver.set_source(finder.get_source(found[0]))
        got = []

        def receive():  # as a receiving tool does: on a thread of its own, always waiting for the next
            while not got and time.monotonic() < end:
                if receiver.receive(ReceiveFrameType.recv_video, 100) & ReceiveFrameType.recv_video:
                    data = np.empty(frame.get_data_size(), np.uint8)
                    frame.fill_p_data(data)
                    w, h = frame.get_resolution()
                    got.append(data.reshape(h, w, 4)[..., :3].astype(int))

        end = time.monotonic() + 20.0
        taker = threading.Thread(target=receive, daemon=True)
        taker.start()
        while not got:
            assert time.monotonic() < end, "no frame received from the NDI source"
            loop.tick()
            shown.append(view.read_pixels().astype(int))
        taker.join()
        got = got[0]
        assert got.shape[:2] == shown[-1].shape[:2]  # the picture's size
        # one of the frames the loop drew (NDI sends the latest, coded 4:2:2 and compressed): its
        # pixels within a few levels (measured 2.0), and far from it upside down (7.1 at best)
        errors = [np.abs(got - picture).mean() for picture in shown]
        best = int(np.argmin(errors))
        assert errors[best] < 3.0, errors
        assert min(np.abs(got[::-1] - picture).mean() for picture in shown) > 2 * errors[best]
        lit = shown[best].min(axis=2) > 50  # the pale lines, where the loop drew them
        assert lit.sum() > 100 and got[lit].mean() > 3 * got[~lit].mean()
        assert out.sent >= 1 and out.figures()["ms_a_frame"] > 0
    finally:
        if receiver is not None:
            receiver.disconnect()
        finder.close()
        close_console(services)
        view.release()
