"""One tray app per user: a second launch hands over to the first and exits.

The first instance listens on a QLocalServer named after the user; a later one connects,
sends one line ("show" or "show <view>"), and the first raises its dashboard.
"""

from __future__ import annotations

import getpass
import hashlib
import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

ENV_NAME = "CLM_TRAY_INSTANCE_NAME"  # tests (and odd setups) pick their own server name


def instance_name() -> str:
    if os.environ.get(ENV_NAME):
        return os.environ[ENV_NAME]
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return "clm-tray-" + hashlib.sha1(user.encode()).hexdigest()[:12]


class SingleInstance(QObject):
    message = Signal(str)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or instance_name()
        self.server: QLocalServer | None = None

    def hand_over(self, message: str = "show", timeout_ms: int = 500) -> bool:
        """True when another instance is running and got the message."""
        sock = QLocalSocket()
        sock.connectToServer(self.name)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write((message + "\n").encode())
        sock.flush()
        sock.waitForBytesWritten(timeout_ms)
        sock.disconnectFromServer()
        if sock.state() != QLocalSocket.LocalSocketState.UnconnectedState:
            sock.waitForDisconnected(timeout_ms)
        return True

    def listen(self) -> bool:
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            QLocalServer.removeServer(self.name)  # a stale socket from a crash
            if not server.listen(self.name):
                return False
        server.newConnection.connect(self._accept)
        self.server = server
        return True

    def _accept(self) -> None:
        assert self.server is not None
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            sock.readyRead.connect(lambda s=sock: self._read(s))
            sock.disconnected.connect(sock.deleteLater)
            if sock.bytesAvailable():
                self._read(sock)

    def _read(self, sock: QLocalSocket) -> None:
        while sock.canReadLine():
            line = bytes(sock.readLine().data()).decode(errors="replace").strip()
            if line:
                self.message.emit(line)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
