"""SQS long polling while requests are served one at a time (``server.serialize_requests``).

moto waits for messages inside ReceiveMessage (``WaitTimeSeconds``: ``Queue.wait_for_messages``, up to 1 s at a
time), which on its threaded server lets other requests in. Behind the emulator's one-request-at-a-time lock the
wait would hold every other request — the SendMessage it waits for included — until it times out. While a receive
waits, the lock is released, as moto's own server does by serving requests on threads; the receive re-takes it
before it looks at the queue again.
"""

from __future__ import annotations

import threading


def patch_sqs_long_polling(request_lock: threading.Lock) -> None:
    from moto.sqs.models import Queue

    original = Queue.wait_for_messages

    def wait_for_messages(self, timeout: int) -> None:
        request_lock.release()
        try:
            original(self, timeout)
        finally:
            request_lock.acquire()

    Queue.wait_for_messages = wait_for_messages
