"""Selects INBOX, starts IDLE, says so on stdout, and waits for an EXISTS caused by another
process (the Rust test appends through its own Store)."""
import sys

from common import *

a = connect("alice@example.test")
ok(a.select("INBOX"))
idle_start(a)
print("idling", flush=True)
idle_wait_for(a, rb"^\* 1 EXISTS")
idle_done(a)
done()
