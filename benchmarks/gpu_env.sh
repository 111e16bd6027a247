# Sourced by gpu_check.sh and paper_scale.sh from the repository root: the environment both run
# dipspec in, and where they find the paper's images.

# PYTHONPATH at this checkout, unbuffered, headless, no progress bars, offline, the commit.
dipspec_env() {
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
  export DIPSPEC_PROGRESS=0 DIPSPEC_OFFLINE=${DIPSPEC_OFFLINE:-1}
  export DIPSPEC_COMMIT=${DIPSPEC_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo)}
}

# DIPSPEC_DATA_MIRROR, unless already set: the first of these folders that holds the images.
NO_PAPER_DATA="none (no shared/paper-data, .paper-data or ../shared/paper-data)"
find_paper_data() {
  [ -n "${DIPSPEC_DATA_MIRROR+set}" ] && return 0
  local dir
  for dir in shared/paper-data .paper-data ../shared/paper-data; do
    if [ -d "$dir/denoising" ]; then
      DIPSPEC_DATA_MIRROR=$(cd "$dir" && pwd)
      export DIPSPEC_DATA_MIRROR
      return 0
    fi
  done
}
