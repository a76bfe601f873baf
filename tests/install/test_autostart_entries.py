"""Start at login: the Linux file for real, macOS and Windows by their exact content."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

from clm_tray.cli import main
from clm_tray.core.config import autostart
from clm_tray.core.config.autostart_xdg import desktop_exec, parse_desktop_exec


def test_linux_enable_status_disable_round_trip(home: Path) -> None:
    exe = ["/opt/clm-tray/clm-tray"]
    entry = home / "xdg-config" / "autostart" / "clm-tray.desktop"

    assert autostart.status(exe=exe).enabled is False
    written = autostart.enable(exe=exe)

    assert written.path == entry and entry.is_file()
    text = entry.read_text()
    assert "Exec=/opt/clm-tray/clm-tray gui\n" in text
    assert "Type=Application\n" in text and "X-GNOME-Autostart-enabled=true\n" in text
    st = autostart.status(exe=exe)
    assert st.enabled and st.command == [*exe, "gui"] and not st.stale

    assert autostart.disable() is True
    assert not entry.exists()
    assert autostart.is_enabled() is False
    assert autostart.disable() is False


def test_cli_autostart_round_trip_points_at_the_installed_app(home: Path, capsys) -> None:
    assert main(["autostart", "enable"]) == 0
    entry = home / "xdg-config" / "autostart" / "clm-tray.desktop"
    assert entry.is_file()
    capsys.readouterr()

    assert main(["autostart", "status", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["enabled"] is True and st["location"] == str(entry)
    assert st["command"] == [*autostart.installed_command(), "gui"]
    assert f"Exec={desktop_exec(st['command'])}\n" in entry.read_text()

    assert main(["autostart", "disable"]) == 0
    assert not entry.exists()
    assert "disabled" in capsys.readouterr().out


def test_linux_without_xdg_config_home_uses_dot_config(tmp_path: Path) -> None:
    p = autostart.plan("linux", ["clm-tray"], tmp_path, environ={})
    assert p.path == tmp_path / ".config" / "autostart" / "clm-tray.desktop"
    relative = autostart.plan("linux", ["clm-tray"], tmp_path,
                              environ={"XDG_CONFIG_HOME": "relative/ignored"})
    assert relative.path == p.path


def test_linux_desktop_file_exact_content_with_spaces_and_percent(tmp_path: Path) -> None:
    p = autostart.plan("linux", ["/home/a b/.local/bin/clm-tray", "--env-file", "100%.env"],
                       tmp_path, environ={"XDG_CONFIG_HOME": str(tmp_path / "cfg")},
                       icon="/opt/clm-tray/clm-tray.png")
    assert p.path == tmp_path / "cfg" / "autostart" / "clm-tray.desktop"
    assert p.content == (
        b"[Desktop Entry]\n"
        b"Type=Application\n"
        b"Name=clm-tray\n"
        b"Comment=Keeps the trading backend's XGBoost model fresh and honest\n"
        b'Exec="/home/a b/.local/bin/clm-tray" --env-file 100%%.env gui\n'
        b"Icon=/opt/clm-tray/clm-tray.png\n"
        b"Terminal=false\n"
        b"Categories=Utility;\n"
        b"X-GNOME-Autostart-enabled=true\n"
        b"X-GNOME-Autostart-Delay=5\n"
    )
    exec_line = next(ln for ln in p.content.decode().splitlines() if ln.startswith("Exec="))
    assert parse_desktop_exec(exec_line[5:]) == p.command


def test_macos_launch_agent_exact_content(tmp_path: Path) -> None:
    exe = ["/Applications/clm-tray.app/Contents/MacOS/clm-tray"]
    p = autostart.plan("darwin", exe, tmp_path)
    assert p.mechanism == "launch-agent"
    assert p.path == tmp_path / "Library" / "LaunchAgents" / "com.clmtray.agent.plist"
    assert p.content == b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>KeepAlive</key>
	<false/>
	<key>Label</key>
	<string>com.clmtray.agent</string>
	<key>ProcessType</key>
	<string>Interactive</string>
	<key>ProgramArguments</key>
	<array>
		<string>/Applications/clm-tray.app/Contents/MacOS/clm-tray</string>
		<string>gui</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
</dict>
</plist>
"""
    assert plistlib.loads(p.content)["ProgramArguments"] == [*exe, "gui"]


def test_windows_run_value_exact_content(tmp_path: Path) -> None:
    exe = [r"C:\Users\Kari Nordmann\AppData\Local\Programs\clm-tray\clm-tray-gui.exe"]
    p = autostart.plan("win32", exe, tmp_path)
    assert p.mechanism == "run-key" and p.path is None
    assert p.registry_key == r"Software\Microsoft\Windows\CurrentVersion\Run"
    assert p.value_name == "clm-tray"
    assert p.value == ('"C:\\Users\\Kari Nordmann\\AppData\\Local\\Programs\\clm-tray\\'
                       'clm-tray-gui.exe" gui')
    assert p.location == ("HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\clm-tray")
    pythonw = autostart.plan("windows", [r"C:\Py 311\pythonw.exe", "-m", "clm_tray"], tmp_path)
    assert pythonw.value == '"C:\\Py 311\\pythonw.exe" -m clm_tray gui'


def test_entry_switched_off_in_desktop_settings_counts_as_disabled(home: Path) -> None:
    p = autostart.enable(exe=["/opt/clm-tray/clm-tray"])
    assert p.path is not None
    p.path.write_text(p.path.read_text().replace("X-GNOME-Autostart-enabled=true",
                                                 "X-GNOME-Autostart-enabled=false"))
    st = autostart.status(exe=["/opt/clm-tray/clm-tray"])
    assert not st.enabled and "switched off" in st.note


def test_entry_of_a_moved_installation_is_reported_stale(home: Path) -> None:
    autostart.enable(exe=["/old/place/clm-tray"])
    st = autostart.status(exe=["/new/place/clm-tray"])
    assert st.enabled and st.stale
    assert "/old/place/clm-tray" in st.note and "autostart enable" in st.note


def test_installed_command_for_each_kind_of_install(tmp_path: Path) -> None:
    frozen = tmp_path / "dist" / "clm-tray"
    assert autostart.installed_command(frozen=True, executable=str(frozen),
                                       platform="linux") == [str(frozen)]
    win = tmp_path / "win"
    win.mkdir()
    (win / "clm-tray.exe").touch()
    (win / "clm-tray-gui.exe").touch()
    assert autostart.installed_command(frozen=True, executable=str(win / "clm-tray.exe"),
                                       platform="win32") == [str(win / "clm-tray-gui.exe")]
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "clm-tray").touch()
    assert autostart.installed_command(frozen=False, executable=str(venv / "python"),
                                       platform="linux") == [str(venv / "clm-tray")]
    winpy = tmp_path / "Python311"
    winpy.mkdir()
    (winpy / "pythonw.exe").touch()
    assert autostart.installed_command(frozen=False, executable=str(winpy / "python.exe"),
                                       platform="win32") == [str(winpy / "pythonw.exe"), "-m",
                                                             "clm_tray"]
