# Once, after staging: wheels the staged Python lacks, random BERT-Large weights (seed 0), the
# BERT-Large explicit-int8 scales calibrated beforehand on a CPU (numpy reference, 64 train windows).
source .work/dev/q/env.sh
python -m pip install -q --no-index --no-deps $G/wheels/*.whl
python -c "import tensorrt, pycuda, numpy, tqdm; print('trt', tensorrt.__version__, 'numpy', numpy.__version__)"
[ -f $LW ] || python -m helpers.weights random large $LW --fp16
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nproc
