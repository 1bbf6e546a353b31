"""ServiceInstance and SessionManager: what a client sees first, and logins."""
from __future__ import annotations

import datetime
from typing import Any

from pyVmomi import vim, vmodl

from harness.fakevc.model.base import MO, CallContext
from harness.fakevc.model.task import now
from harness.fakevc.wire import complete


class ServiceInstance(MO):
    vim_type = vim.ServiceInstance
    moid_prefix = "ServiceInstance"

    def about(self) -> Any:
        vc = self.vc
        return complete(vim.AboutInfo(
            name="VMware vCenter Server", fullName=f"VMware vCenter Server {vc.version} build-{vc.build} (vcrypt fake)",
            vendor="VMware, Inc.", version=vc.version, build=vc.build, osType="linux-x64",
            productLineId="vpx", apiType="VirtualCenter", apiVersion=vc.api_version,
            instanceUuid=vc.instance_uuid, licenseProductName="VMware VirtualCenter Server",
            licenseProductVersion=vc.version.split(".")[0] + ".0"))

    def content(self) -> Any:
        managers = self.vc.managers
        fields = {name: mo.ref for name, mo in managers.items()}
        return complete(vim.ServiceInstanceContent(about=self.about(), **fields))

    def p_content(self) -> Any:
        return self.content()

    def p_serverClock(self) -> Any:
        return now()

    def p_capability(self) -> Any:
        return complete(vim.Capability(provisioningSupported=True, multiHostSupported=True,
                                       userShellAccessSupported=False))

    def RetrieveServiceContent(self, ctx: CallContext) -> Any:
        return self.content()

    def CurrentTime(self, ctx: CallContext) -> Any:
        return now()


class SessionManager(MO):
    """Logins, the caller's own session, and session checks.

    Sessions expire only by fault injection (`FakeVCenter.expire_sessions`): every call then
    raises NotAuthenticated until the client logs in again, as after a vCenter restart.
    """
    vim_type = vim.SessionManager
    moid_prefix = "SessionManager"

    def _user_session(self, session: Any) -> Any:
        from harness.fakevc.model.authorization import display_name
        name = display_name(session.user)
        return vim.UserSession(
            key=session.key, userName=name, fullName=name, loginTime=_utc(session.login_time),
            lastActiveTime=_utc(session.last_active or session.login_time), locale=session.locale,
            messageLocale=session.locale, extensionSession=False, ipAddress="127.0.0.1",
            userAgent="pyvmomi (vcrypt fake)", callCount=session.call_count)

    def p_currentSession(self) -> Any:
        ctx = self.vc.current_context()
        session = ctx.session if ctx else None
        return self._user_session(session) if session else None

    def p_sessionList(self) -> list:
        """Every session for a caller who may terminate sessions; otherwise only the caller's."""
        ctx = self.vc.current_context()
        caller = ctx.session if ctx else None
        if caller is None:
            return []
        everyone = self.vc.authz.has_privilege(caller.user, self.vc.root, "Sessions.TerminateSession")
        return [self._user_session(s) for s in self.vc.sessions.values()
                if not s.expired and (everyone or s is caller)]

    def p_defaultLocale(self) -> str:
        return "en"

    def p_supportedLocaleList(self) -> list[str]:
        return ["en"]

    def p_messageLocaleList(self) -> list[str]:
        return ["en"]

    def p_message(self) -> str:
        return ""

    def Login(self, ctx: CallContext, userName: str, password: str, locale: str | None = None) -> Any:
        user = self.vc.check_login(userName, password)
        return self._user_session(self.vc.open_session(user, locale))

    def Logout(self, ctx: CallContext) -> None:
        if ctx.session:
            self.vc.sessions.pop(ctx.session.key, None)

    def SessionIsActive(self, ctx: CallContext, sessionID: str, userName: str) -> bool:
        from harness.fakevc.model.authorization import canonical
        session = self.vc.session_for(sessionID)
        return bool(session and canonical(session.user) == canonical(userName))

    def TerminateSession(self, ctx: CallContext, sessionId: list[str]) -> None:
        for key in sessionId:
            if ctx.session and key == ctx.session.key:
                raise vmodl.fault.InvalidArgument(invalidProperty="sessionId",
                                                  msg="A specified parameter was not correct: the caller's own session")
            if self.vc.session_for(key) is None:
                raise vim.fault.NotFound(msg=f"The session '{key}' was not found.")
        for key in sessionId:
            self.vc.sessions.pop(key, None)

    def SetLocale(self, ctx: CallContext, locale: str) -> None:
        if ctx.session:
            ctx.session.locale = locale


def _utc(moment: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(moment, tz=datetime.timezone.utc) if moment else now()
