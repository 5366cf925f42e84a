"""Asks the window titled by argv[1] to close, as a window manager's close button does
(a WM_DELETE_WINDOW client message), so the app's own close handling runs."""

import sys

from Xlib import X, display, protocol

title = sys.argv[1]
d = display.Display()
root = d.screen().root
wm_protocols = d.intern_atom("WM_PROTOCOLS")
wm_delete = d.intern_atom("WM_DELETE_WINDOW")


def find(window):
    if window.get_wm_name() == title and window.get_attributes().map_state == X.IsViewable:
        return window
    for child in window.query_tree().children:
        found = find(child)
        if found:
            return found
    return None


target = find(root)
if target is None:
    sys.exit(f"no visible window titled {title!r}")
event = protocol.event.ClientMessage(
    window=target, client_type=wm_protocols, data=(32, [wm_delete, X.CurrentTime, 0, 0, 0])
)
target.send_event(event)
d.flush()
