"""The reference models and their training: shortcuts (duration, loudness, random), the scalar
reward models (BT, MSE), the DPO implicit reward, the GRPO judge, zero-shot DNSMOS/PLCMOS, and
adapters for hub and audio-LLM models; `mosrm train` (`train`, per-recipe `*_train` modules).

Each model is an ordinary submission entry (`benchmark.baselines.<module>:build`): the harness
scores it through the same loop and, unless its folder is a byte-identical official one
(`scoring.trust`), the same sandbox as a stranger's. Nothing here computes a metric or reads a
result.
"""
