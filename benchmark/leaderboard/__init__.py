"""The board, a pure function of a results folder: loaded and checked (`load`), every table
computed once (`data`, rank intervals `ranking`), then only formatted (`markdown`, `site`, `exports`,
`plots`) and, on request, published (`publish`).

Never scores a model and never recomputes a pair file: what is not in the results is not on the
board, so anyone with the same results folder gets the same bytes.
"""
