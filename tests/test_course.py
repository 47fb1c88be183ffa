"""vislib.course: the runner behind `make course`."""
import asyncio
import time
from queue import Empty

import pytest

from vislib import course


def test_notebooks_are_the_eleven_course_chapters_in_order():
    names = [p.name for p in course.notebooks()]
    assert len(names) == 11 and names == sorted(names) and names[0].startswith("01_")
    assert [p.name for p in course.notebooks(["03", "10"])] == [names[2], names[9]]


class Channel:
    """A shell channel whose message becomes visible only to a poll started after `ready_at`:
    a poll that began earlier sleeps through its whole timeout, as in jupyter/nbclient#312."""

    def __init__(self, ready_at: float):
        self.ready_at, self.polls = ready_at, []

    async def get_msg(self, timeout=None):
        self.polls.append(timeout)
        if time.monotonic() >= self.ready_at:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)
        raise Empty


def test_repolling_finds_a_reply_that_one_long_poll_would_miss():
    channel = Channel(ready_at=time.monotonic() + 0.05)
    start = time.monotonic()
    msg = asyncio.run(course._repolling(channel.get_msg, every=0.02)(timeout=30))
    assert msg == {"msg_type": "execute_reply"} and time.monotonic() - start < 1
    assert len(channel.polls) >= 3 and max(channel.polls) <= 0.02


def test_repolling_still_times_out():
    channel = Channel(ready_at=float("inf"))
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(course._repolling(channel.get_msg, every=0.02)(timeout=0.1))
    assert 0.1 <= time.monotonic() - start < 1


def test_patient_kernel_clients_patches_every_client_and_restores_it():
    from nbclient import NotebookClient
    from nbconvert.preprocessors import ExecutePreprocessor

    original = NotebookClient.async_start_new_kernel_client
    with course.patient_kernel_clients():
        assert NotebookClient.async_start_new_kernel_client is not original
        assert ExecutePreprocessor.async_start_new_kernel_client is NotebookClient.async_start_new_kernel_client
    assert NotebookClient.async_start_new_kernel_client is original
