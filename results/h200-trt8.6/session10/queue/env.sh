# Sourced by every queue on the GPU machine (from the checkout's root).
source /opt/trtenv/env.sh
export ROOT=$PWD G=$PWD/.work/gpu-shared B=/tmp/bt
export E=$B/engines L=$B/logs R=$B/results
export BERT_TRT_SHARED=$G BERT_TRT_WEIGHTS_DIR=$G/weights
export DEV=$G/data/squad/dev-v1.1.json TRAIN=$G/data/squad/train-v1.1-first8.json
export TF=minilm-l6-h384-squad11-tf HF=minilm-l6-h384-a6-squad11-hf
export LV=$G/models/minilm-l6-h384-a6-squad11-hf/vocab.txt LW=$E/large.npz
mkdir -p $E $L $R
stamp() { echo "[$(date +%T)] $*"; }
export OPENBLAS_NUM_THREADS=4
