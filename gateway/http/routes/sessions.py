"""The configured FIX sessions, as the QuickFIX acceptor and the front see them, and what an
operator may do to them (admin only; every action logged and audited: see
:mod:`gateway.fix.control`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException

from gateway.fix.control import SessionError
from gateway.http.deps import AdminToken, SessionsDep, ViewerToken
from gateway.http.models import SeqNumsIn, SessionDisableIn, SessionLogoutIn, SessionView
from gateway.http.problems import ERRORS

router = APIRouter(prefix="/sessions", tags=["fix"])


def _act(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return action()
    except SessionError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("", response_model=list[SessionView])
def list_sessions(token: ViewerToken, sessions: SessionsDep) -> list[dict[str, Any]]:
    """Every configured FIX session: logged on or not, sequence numbers, peer address, whether
    logons are enabled, its schedule and whether it is within it now."""
    return sessions.views()


@router.get("/{comp_id}", response_model=SessionView, responses=ERRORS)
def get_session(comp_id: str, token: ViewerToken, sessions: SessionsDep) -> dict[str, Any]:
    return _act(lambda: sessions.view(comp_id))


@router.post("/{comp_id}/logout", response_model=SessionView, responses=ERRORS)
def logout(
    comp_id: str, body: SessionLogoutIn, token: AdminToken, sessions: SessionsDep
) -> dict[str, Any]:
    """Send a Logout with the reason as its Text (58) and wait for the session to end
    (409 if it is not logged on). The CompID may log on again at once."""
    return _act(lambda: sessions.logout(comp_id, body.reason, token.name))


@router.post("/{comp_id}/disconnect", response_model=SessionView, responses=ERRORS)
def disconnect(comp_id: str, token: AdminToken, sessions: SessionsDep) -> dict[str, Any]:
    """Drop the session's TCP connection without a Logout (409 if it has none)."""
    return _act(lambda: sessions.disconnect(comp_id, token.name))


@router.post("/{comp_id}/reset", response_model=SessionView, responses=ERRORS)
def reset(comp_id: str, token: AdminToken, sessions: SessionsDep) -> dict[str, Any]:
    """Both sequence numbers back to 1 and the stored messages cleared. Only while the session
    is logged out (409 otherwise); connections for it wait until done."""
    return _act(lambda: sessions.reset(comp_id, token.name))


@router.put("/{comp_id}/seqnums", response_model=SessionView, responses=ERRORS)
def set_seqnums(
    comp_id: str, body: SeqNumsIn, token: AdminToken, sessions: SessionsDep
) -> dict[str, Any]:
    """Set the next MsgSeqNum sent (``next_sender``) and/or expected (``next_target``). Only
    while logged out, and not for a session with reset_on_logon (409)."""
    if body.next_sender is None and body.next_target is None:
        raise HTTPException(422, "give next_sender, next_target or both")
    return _act(
        lambda: sessions.set_seqnums(comp_id, body.next_sender, body.next_target, token.name)
    )


@router.post("/{comp_id}/disable", response_model=SessionView, responses=ERRORS)
def disable(
    comp_id: str, body: SessionDisableIn, token: AdminToken, sessions: SessionsDep
) -> dict[str, Any]:
    """Refuse the CompID's logons (a Logout whose Text gives the reason) until enabled, across
    restarts; a logged-on session is logged out."""
    return _act(lambda: sessions.disable(comp_id, body.reason, token.name))


@router.post("/{comp_id}/enable", response_model=SessionView, responses=ERRORS)
def enable(comp_id: str, token: AdminToken, sessions: SessionsDep) -> dict[str, Any]:
    """Admit the CompID's logons again."""
    return _act(lambda: sessions.enable(comp_id, token.name))
