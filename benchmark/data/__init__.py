"""Stage 1, corpus to clip table: readers of each corpus's native layout (`corpora/`), downloads
(`download/`), task specs (`tasks`), the clip and pair table schemas (`tables`), audio decoding and
its caches (`audio`, `audio_cache`, `packed_audio`), batches of waveforms (`batch`) and the YAML
loader every untrusted file goes through (`safe_yaml`).

Knows nothing of pairs, models or metrics: it imports only the bottom modules (`errors`, `paths`,
`atomic`, `hashing`, `escape`).
"""
