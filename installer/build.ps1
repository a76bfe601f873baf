# Build the Windows one-folder app dist\clm-tray\ (clm-tray.exe = CLI, clm-tray-gui.exe = GUI
# without a console) with PyInstaller, then, when Inno Setup 6 is installed, the installer
# dist\clm-tray-<version>-setup.exe. Run from the repository root:
#   powershell -ExecutionPolicy Bypass -File installer\build.ps1
# Needs: python -m venv .venv; .venv\Scripts\pip install -e .[build]
$ErrorActionPreference = "Stop"
Set-Location (Split-Path -Parent $PSScriptRoot)

$py = if ($env:PYTHON) { $env:PYTHON } elseif (Test-Path .venv\Scripts\python.exe) { ".venv\Scripts\python.exe" } else { "python" }
& $py -m PyInstaller --version *> $null
if ($LASTEXITCODE -ne 0) { Write-Error "PyInstaller is not installed in $py; run: $py -m pip install -e .[build]"; exit 2 }
$version = (& $py -c "import clm_tray; print(clm_tray.__version__)").Trim()
Write-Host "build.ps1: clm-tray $version"

$watch = [Diagnostics.Stopwatch]::StartNew()
if (Test-Path dist\clm-tray) { Remove-Item -Recurse -Force dist\clm-tray }
& $py -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build\pyinstaller installer\clm-tray.spec
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
foreach ($exe in "clm-tray.exe", "clm-tray-gui.exe") {
    if (-not (Test-Path "dist\clm-tray\$exe")) { Write-Error "dist\clm-tray\$exe was not produced"; exit 1 }
}
$size = "{0:N0} MB" -f ((Get-ChildItem -Recurse dist\clm-tray | Measure-Object Length -Sum).Sum / 1MB)
Write-Host "build.ps1: built dist\clm-tray\ in $([int]$watch.Elapsed.TotalSeconds) s, $size"

# Quick check of the built app (the full smoke test is installer/smoke.sh on Linux).
& dist\clm-tray\clm-tray.exe --version
if ($LASTEXITCODE -ne 0) { Write-Error "the built clm-tray.exe --version failed"; exit 1 }

$iscc = Get-Command iscc -ErrorAction SilentlyContinue
if (-not $iscc -and (Test-Path "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe")) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
if ($iscc) {
    & $iscc "/DAppVersion=$version" installer\clm-tray.iss
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Write-Host "build.ps1: dist\clm-tray-$version-setup.exe"
} else {
    Write-Host "build.ps1: Inno Setup 6 not found (winget install JRSoftware.InnoSetup); skipped the installer"
}
