"""ServiceInstance and SessionManager: what a client sees first, and logins."""
from __future__ import annotations

from typing import Any

from pyVmomi import vim

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
    vim_type = vim.SessionManager
    moid_prefix = "SessionManager"

    def _user_session(self, session: Any) -> Any:
        return complete(vim.UserSession(
            key=session.key, userName=session.user, fullName=session.user, loginTime=now(),
            lastActiveTime=now(), locale="en", messageLocale="en", extensionSession=False,
            ipAddress="127.0.0.1", userAgent="pyvmomi", callCount=0))

    def p_currentSession(self) -> Any:
        return None

    def Login(self, ctx: CallContext, userName: str, password: str, locale: str | None = None) -> Any:
        user = self.vc.check_login(userName, password)
        return self._user_session(self.vc.open_session(user))

    def Logout(self, ctx: CallContext) -> None:
        if ctx.session:
            self.vc.sessions.pop(ctx.session.key, None)

    def SessionIsActive(self, ctx: CallContext, sessionID: str, userName: str) -> bool:
        session = self.vc.session_for(sessionID)
        return bool(session and session.user.lower() == userName.lower())
