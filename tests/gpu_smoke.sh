#!/usr/bin/env bash
# The device check, prepared to run as one short script on a machine with an NVIDIA GPU and a CUDA
# build of PyTorch: the CUDA tests, machine peaks and a compare on CUDA in float32 and bfloat16.
#   bash tests/gpu_smoke.sh            (writes its JSON under ${OUT:-/tmp/dsconv-gpu})
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/dsconv-gpu}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" DSCONV_CACHE_DIR="$out/cache"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA'; print(torch.__version__, torch.cuda.get_device_name())"
python -m pytest -q tests/test_timing.py tests/test_cli.py tests/test_environment.py -k "cuda or busy" -p no:cacheprovider
# torchvision's published figures, where a torchvision matching this torch imports
python -m pytest -q tests/test_model.py -k torchvision -p no:cacheprovider -rs
for dtype in float32 bfloat16; do
    python -m dsconv_cli peaks --device cuda --dtype "$dtype"
done
python -m dsconv_cli compare --device cuda --dtype float32,bfloat16 --batch 1,8,32 --channels-last \
    --min-time 0.2 --format json --output "$out/compare_cuda.json"
python -m dsconv_cli compare --device cuda --dtype float32,bfloat16 --batch 1,8,32 --channels-last --min-time 0.2
python -m dsconv_cli compare -i 64 -o 128 -k 5 --stride 2 --input-shape 8,64,56,56 --device cuda --min-time 0.2
# the issue's figures: a 64->128 3x3 layer at batch 1 and 32, float32 and bfloat16, interleaved rounds
python -m dsconv_cli compare -i 64 -o 128 -k 3 --input-shape 1,64,56,56 --batch 1,32 --dtype float32,bfloat16 \
    --device cuda --min-time 0.3 --format json --output "$out/compare_64_128.json"
python -m dsconv_cli peaks --device cuda --check
python -m dsconv_cli compare --device cuda --no-roofline --backward --min-time 0.2
# a whole model counted on meta, converted, and both timed end to end on the GPU
python -m dsconv_cli analyze tests/models.py:TinyMobileNetV2 --input-shape 32,3,64,64 --convert all --bench \
    --device cuda --min-time 0.2 --verify
