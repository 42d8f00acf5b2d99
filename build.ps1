# LongDepEngine build under PowerShell (Windows, Linux or macOS), the same steps as build.sh.
#   ./build.ps1            restore + Release build, and the CUDA kernels when nvcc is present
#   ./build.ps1 kernels    build only the kernels (build/native/longdep_kernels.fatbin)
#   ./build.ps1 test       build, then run the test suite
#   ./build.ps1 bundle     self-contained trimmed longdep + kernels: dist/longdep-<rid>/
param([ValidateSet('build', 'kernels', 'test', 'bundle')][string]$Command = 'build')
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'; $env:DOTNET_NOLOGO = '1'

function Fail([string]$msg) { Write-Error "build.ps1: $msg"; exit 1 }

function Need-Dotnet {
    if (-not (Get-Command dotnet -ErrorAction SilentlyContinue)) { Fail 'the .NET SDK (10.0) is not on PATH; install it (https://dot.net) and run ./build.ps1 again' }
    $major = [int]((dotnet --version) -split '\.')[0]
    if ($major -lt 10) { Fail "the .NET SDK 10 or newer is needed; found $(dotnet --version)" }
}

function Build-Kernels {
    $nvcc = Get-Command nvcc -ErrorAction SilentlyContinue
    if (-not $nvcc) { Write-Host '[build] nvcc not found: skipping the CUDA kernels; the CPU path builds without them'; return }
    $out = Join-Path $PSScriptRoot 'build/native'
    $fatbin = Join-Path $out 'longdep_kernels.fatbin'
    if (Test-Path $fatbin) {
        $stamp = (Get-Item $fatbin).LastWriteTimeUtc
        $newer = Get-ChildItem kernels, native -File -Recurse | Where-Object { $_.LastWriteTimeUtc -gt $stamp }
        if (-not $newer) { Write-Host "[build] kernels up to date ($fatbin)"; return }
    }
    if (Get-Command bash -ErrorAction SilentlyContinue) { bash native/build-kernels.sh $out; if ($LASTEXITCODE) { Fail 'kernel build failed' }; return }
    New-Item -ItemType Directory -Force $out | Out-Null
    & nvcc -std=c++17 -O3 -lineinfo -fatbin -gencode 'arch=compute_90,code=sm_90' -gencode 'arch=compute_90,code=compute_90' -o $fatbin native/longdep_kernels.cu
    if ($LASTEXITCODE) { Fail 'kernel build failed' }
}

function Build-All {
    Need-Dotnet
    Build-Kernels
    dotnet build LongDepEngine.sln -c Release -nologo -clp:ErrorsOnly -v:q
    if ($LASTEXITCODE) { Fail 'dotnet build failed' }
}

switch ($Command) {
    'build' { Build-All }
    'kernels' { Build-Kernels }
    'test' { Build-All; dotnet test LongDepEngine.sln -c Release --no-build -nologo; exit $LASTEXITCODE }
    'bundle' {
        Need-Dotnet
        Build-Kernels
        $rid = if ($IsWindows) { 'win-x64' } elseif ($IsMacOS) { 'osx-arm64' } else { 'linux-x64' }
        $out = Join-Path $PSScriptRoot "dist/longdep-$rid"
        if (Test-Path $out) { Remove-Item -Recurse -Force $out }
        dotnet publish src/LongDep.Cli/LongDep.Cli.csproj -c Release -r $rid --self-contained true -p:PublishTrimmed=true -p:TrimMode=partial `
            -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false -p:InvariantGlobalization=true -p:DebugType=none -o $out -nologo -clp:ErrorsOnly -v:q
        if ($LASTEXITCODE) { Fail 'dotnet publish failed' }
        if (Test-Path build/native/longdep_kernels.fatbin) { Copy-Item build/native/longdep_kernels.fatbin $out }
        New-Item -ItemType Directory -Force "$out/kernels-src/kernels", "$out/kernels-src/native" | Out-Null
        Copy-Item kernels/* "$out/kernels-src/kernels/"
        Copy-Item native/*.cu, native/*.c, native/build-kernels.sh "$out/kernels-src/native/"
        Write-Host "[build] bundle: $out"
    }
}
