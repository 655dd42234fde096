# The calls of session 10's second machine, in order (each a `run` from the checkout's root; the first
# machine was handed back after 30 s idle between calls, with nothing built). Not meant to be run as
# one script: each block is one call. env.sh and accuracy.sh were session 9's, unchanged
# (results/h200-trt8.6/session9/queue/); on the machine every script sat in .work/dev/q/.
# 1-7: bash .gpu/partN/unpack .gpu/partN                        (carry .gpu/partN)
# 8 (carry .work/dev, .work/gpu-shared/{data,models,wheels}, .work/gpu-shared/weights/HF.npz):
Q=.work/dev/q; source $Q/env.sh; python -m pip install -q --no-index --no-deps $G/wheels/*.whl
tar xzf results/h200-trt8.6/session9/caches.tgz -C $B; bash $Q/start.sh tests $Q/tests.sh
python -m helpers.weights random large $LW --fp16
bash $Q/start.sh L1 $Q/large.sh L1 int8-implicit; bash $Q/start.sh L2 $Q/large.sh L2 int8-explicit
bash $Q/start.sh P $Q/large.sh P int8-implicit-plain; bash $Q/start.sh hf $Q/large.sh hf hf-fp16-packed
bash $Q/start.sh phase2 $Q/phase2.sh $(( $(date +%s) + 540 )) tests hf L1 L2 P
# 9 (carry .work/dev, .work/gpu-shared/wheels-nb: nbformat 5.11.1, nbclient 0.11.0, ipykernel 7.4.0 and deps):
python -m pip install -q --no-index --find-links .work/gpu-shared/wheels-nb nbformat==5.11.1 nbclient==0.11.0 ipykernel==7.4.0
bash .work/dev/q/poll.sh 240 L1 L2 P hf
# 10: bash $Q/start.sh after after.sh; bash $Q/poll.sh 280 tests phase2
# 11: poll.sh 150 after; then nvidia-smi -q (clocks, power), a torch fp16 GEMM, one perf.py of the implicit engine
# 12: timing.sh alone (phase2's timings had run twice at once, see GPU_NOTES)
# 13 (carry the TF model's .npz too):
BERT_TRT_ENGINE_DIR=$E/tests timeout -s INT 530 python -m pytest -v -s -rA tests/test_gpu.py -k "engine_matches or network_variants"
