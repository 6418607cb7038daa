"""Stage 4, predictions to numbers: pairwise accuracy by ΔMOS bin with clip-clustered intervals
(`metrics`, `uncertainty`), the noise ceiling (`ceiling`) and judge diagnostics (`diagnostics`).

Every number here has a test against an independent computation. Runs no model code except a judge
asked for diagnostic triplets through `scoring`.
"""
