; Inno Setup 6 script: a per-user installer for the PyInstaller build in dist\clm-tray\.
;   iscc /DAppVersion=0.1.0 installer\clm-tray.iss      (installer\build.ps1 runs this)
; Installs into %LOCALAPPDATA%\Programs\clm-tray without admin rights. The optional
; "start at login" task writes the same Run value as `clm-tray autostart enable`.
; Uninstall removes the program and that Run value; settings, model store and logs stay
; (%LOCALAPPDATA%\clm-tray) — see the README's "Uninstall".

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "clm-tray"
#define RunKey "Software\Microsoft\Windows\CurrentVersion\Run"

[Setup]
AppId={{6E0C1A52-6C2B-4F43-9B7E-2C1D0CB3A5F1}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=clm-tray
DefaultDirName={localappdata}\Programs\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
OutputDir=..\dist
OutputBaseFilename={#AppName}-{#AppVersion}-setup
Compression=lzma2
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
UninstallDisplayIcon={app}\{#AppName}-gui.exe
WizardStyle=modern
#if FileExists(AddBackslash(SourcePath) + "..\resources\clm-tray.ico")
SetupIconFile=..\resources\clm-tray.ico
#endif

[Tasks]
Name: "autostart"; Description: "Start clm-tray when I sign in"; GroupDescription: "Start at login:"
Name: "desktopicon"; Description: "Create a desktop shortcut"; GroupDescription: "Shortcuts:"; Flags: unchecked

[Files]
Source: "..\dist\clm-tray\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppName}-gui.exe"; Parameters: "gui"
Name: "{group}\{#AppName} diagnose (copy for a bug report)"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#AppName}.exe"" diagnose"
Name: "{group}\Uninstall {#AppName}"; Filename: "{uninstallexe}"
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\{#AppName}-gui.exe"; Parameters: "gui"; Tasks: desktopicon

[Registry]
; Same value `clm-tray autostart enable` writes: "<app>\clm-tray-gui.exe" gui
Root: HKCU; Subkey: "{#RunKey}"; ValueType: string; ValueName: "{#AppName}"; ValueData: """{app}\{#AppName}-gui.exe"" gui"; Tasks: autostart; Flags: uninsdeletevalue

[Run]
Filename: "{app}\{#AppName}-gui.exe"; Parameters: "gui"; Description: "Launch clm-tray"; Flags: nowait postinstall skipifsilent

[UninstallRun]
; A Run value written later by `clm-tray autostart enable` is removed too.
Filename: "{app}\{#AppName}.exe"; Parameters: "autostart disable"; Flags: runhidden; RunOnceId: "autostart-disable"
