"""Who may change things on this server: the access mode (docs/serving.md).

GOODHART_ACCESS sets it:
    local      (the default) everything, for the person at this machine; only while the server
               listens on a loopback address, as scripts/start.sh starts it (127.0.0.1).
    read-only  visitors open results, share links, comparisons and the reproduction report;
               nothing can be submitted, cancelled or deleted.
    token      read-only until a visitor signs in (sidebar) with GOODHART_TOKEN (16 characters
               or more); then everything, for that browser session.
It fails closed: mode local on a server that listens on another address, an unknown mode, or
token mode without a usable token are read-only, with a banner that says why.

On a shared server (any mode but local) the hf world reads files only under GOODHART_ALLOWED_DIRS
(folders separated by ":"), error messages quote nothing of the server's files, and failed runs
show their last line instead of the traceback. Every action is checked here again when it runs
(store.py), not only by hiding its button.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app.escape import md
from backend.config import ConfigError

MODES = ("local", "read-only", "token")
TOKEN_MIN = 16
SIGNED_IN = "access_signed_in"
TOKEN_INPUT = "access_token"
WRONG_TOKEN_DELAY_S = 1.0  # slows guessing down


@dataclass(frozen=True)
class Policy:
    mode: str  # local, read-only or token (after failing closed)
    reason: str = ""  # why a requested mode was turned into read-only


def is_loopback(address: str) -> bool:
    """127.0.0.1, ::1, localhost; "" (Streamlit's default) and 0.0.0.0 listen everywhere."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def listen_address() -> str:
    return str(st.get_option("server.address") or "")


def policy() -> Policy:
    """The access mode in force (GOODHART_ACCESS, failing closed to read-only)."""
    wanted = os.environ.get("GOODHART_ACCESS", "local").strip().lower() or "local"
    if wanted not in MODES:
        return Policy("read-only", f"GOODHART_ACCESS={wanted!r} is not one of {', '.join(MODES)}")
    address = listen_address()
    if wanted == "local" and not is_loopback(address):
        where = address or "every interface"
        return Policy(
            "read-only",
            f"the server listens on {where}, not only on this machine, and no access mode was "
            "chosen (GOODHART_ACCESS=read-only or token)",
        )
    if wanted == "token" and len(os.environ.get("GOODHART_TOKEN", "")) < TOKEN_MIN:
        return Policy("read-only", f"token mode needs GOODHART_TOKEN of {TOKEN_MIN}+ characters")
    return Policy(wanted)


def shared() -> bool:
    """Served to others: any mode but local."""
    return policy().mode != "local"


def can_change() -> bool:
    """Whether this session may submit, cancel and delete."""
    mode = policy().mode
    return mode == "local" or (mode == "token" and st.session_state.get(SIGNED_IN) is True)


def require_change(action: str) -> None:
    """PermissionError unless this session may change things (checked by store.py's actions)."""
    if not can_change():
        raise PermissionError(f"this server is read-only: {action} is not allowed")


def allowed_dirs() -> list[Path] | None:
    """The folders a shared server's hf world may read (GOODHART_ALLOWED_DIRS), or None when not
    shared (everything the user can read)."""
    if not shared():
        return None
    raw = os.environ.get("GOODHART_ALLOWED_DIRS", "")
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def error_text(e: ConfigError) -> str:
    """A ConfigError's message for this server: without file contents when shared."""
    return e.public if shared() else e.message


def _sign_in() -> None:
    given = st.session_state.get(TOKEN_INPUT, "")
    st.session_state[TOKEN_INPUT] = ""
    token = os.environ.get("GOODHART_TOKEN", "")
    if len(token) >= TOKEN_MIN and hmac.compare_digest(given.encode(), token.encode()):
        st.session_state[SIGNED_IN] = True
    else:
        time.sleep(WRONG_TOKEN_DELAY_S)
        st.session_state[SIGNED_IN] = False


def _sign_out() -> None:
    st.session_state[SIGNED_IN] = None


def sidebar() -> None:
    """The access mode in the sidebar, and the sign-in box in token mode."""
    p = policy()
    if p.mode == "local":
        return
    with st.sidebar:
        if p.mode == "token" and st.session_state.get(SIGNED_IN) is True:
            st.success("Signed in: you may submit, cancel and delete.", icon=":material/key:")
            st.button("Sign out", key="access_sign_out", on_click=_sign_out)
            return
        st.info(
            "Read-only: you can open results, share links and comparisons; submitting, "
            "cancelling and deleting are turned off on this server.",
            icon=":material/visibility:",
        )
        if p.reason:
            st.caption(f"Why: {md(p.reason)}.")
        if p.mode == "token":
            st.text_input("Access token", type="password", key=TOKEN_INPUT)
            st.button("Sign in", key="access_sign_in", on_click=_sign_in)
            if st.session_state.get(SIGNED_IN) is False:
                st.error("That token is not right.")


def read_only_note(what: str) -> None:
    """One line where an action's buttons would be, saying why they are not."""
    st.caption(f"{what} is turned off: this server is read-only (see the sidebar).")
