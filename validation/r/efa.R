# Reference values for cips_stats.factor.efa (KMO, Bartlett, EFA, parallel analysis).
#
# Run from the repository root:   Rscript validation/r/efa.R
# Writes tests/reference/efa_hs.json, tests/reference/efa_bfi.json and the data files
# tests/reference/efa_hs_data.csv, tests/reference/efa_bfi_data.csv.
# Data: lavaan::HolzingerSwineford1939 (x1..x9, n = 301, complete) and psych::bfi
# (A1..O5, n = 2800, with missing answers -> pairwise-complete correlations).
suppressPackageStartupMessages({
  library(psych); library(lavaan); library(jsonlite); library(GPArotation)
})

versions <- list(R = R.version.string, psych = as.character(packageVersion("psych")),
                 GPArotation = as.character(packageVersion("GPArotation")),
                 lavaan = as.character(packageVersion("lavaan")))
tolerances <- list(kmo = 1e-6, bartlett_chi2 = 1e-6, loadings = 1e-3, uniquenesses = 1e-3,
                   phi = 1e-3, ml_chi2 = 1e-3,
                   parallel_observed = 1e-8, parallel_simulated_mean = 0.03)

fa_out <- function(f) {
  L <- unclass(f$loadings)
  out <- list(loadings = unname(L), uniquenesses = unname(f$uniquenesses),
              communalities = unname(f$communality))
  if (!is.null(f$Phi)) out$phi <- unname(f$Phi)
  if (!is.null(f$STATISTIC)) {
    out$chi2 <- f$STATISTIC; out$df <- f$dof; out$pvalue <- f$PVAL; out$objective <- f$objective
  }
  out
}

one_set <- function(X, nf, label, fits, parallel = TRUE) {
  R <- cor(X, use = "pairwise")
  k <- KMO(R)
  b <- cortest.bartlett(R, n = nrow(X))
  res <- list(
    items = colnames(X), n = nrow(X), n_factors = nf,
    kmo = list(call = "psych::KMO(cor(X, use='pairwise'))", overall = k$MSA,
               per_item = unname(k$MSAi)),
    bartlett = list(call = "psych::cortest.bartlett(cor(X, use='pairwise'), n = nrow(X))",
                    chi2 = b$chisq, df = b$df, pvalue = b$p.value),
    fits = list())
  for (nm in names(fits)) {
    a <- fits[[nm]]
    f <- fa(X, nfactors = nf, rotate = a$rotate, fm = a$fm, use = "pairwise")
    res$fits[[nm]] <- c(list(call = sprintf("psych::fa(X, nfactors=%d, rotate='%s', fm='%s', use='pairwise')",
                                            nf, a$rotate, a$fm),
                             rotation = a$rotate, method = a$fm), fa_out(f))
  }
  if (parallel) {
    set.seed(20261122)
    pa <- fa.parallel(X, fm = "minres", fa = "both", n.iter = 200, SMC = TRUE, sim = TRUE,
                      quant = 0.95, plot = FALSE)
    res$parallel <- list(
      call = "set.seed(20261122); psych::fa.parallel(X, fm='minres', fa='both', n.iter=200, SMC=TRUE, sim=TRUE, quant=0.95, plot=FALSE)",
      pc_values = pa$pc.values, fa_values = pa$fa.values,
      pc_sim_mean = pa$pc.sim, fa_sim_mean = pa$fa.sim,
      ncomp = pa$ncomp, nfact = pa$nfact)
  }
  res
}

hs <- HolzingerSwineford1939[, paste0("x", 1:9)]
write.csv(hs, "tests/reference/efa_hs_data.csv", row.names = FALSE)
hs_res <- one_set(hs, 3, "hs", list(
  ml_oblimin = list(fm = "ml", rotate = "oblimin"),
  minres_oblimin = list(fm = "minres", rotate = "oblimin"),
  ml_varimax = list(fm = "ml", rotate = "varimax"),
  ml_promax = list(fm = "ml", rotate = "promax"),
  ml_geomin = list(fm = "ml", rotate = "geominQ"),
  minres_none = list(fm = "minres", rotate = "none")))

data(bfi, package = "psych")
bf <- bfi[, 1:25]
write.csv(bf, "tests/reference/efa_bfi_data.csv", row.names = FALSE, na = "")
bfi_res <- one_set(bf, 5, "bfi", list(
  ml_oblimin = list(fm = "ml", rotate = "oblimin"),
  minres_oblimin = list(fm = "minres", rotate = "oblimin")), parallel = TRUE)

source(file.path("validation", "r", "meta.R"))
efa_calls <- list(kmo = "psych::KMO(cor(X, use='pairwise'))",
                  bartlett = "psych::cortest.bartlett(cor(X, use='pairwise'), n = nrow(X))",
                  fa = "psych::fa(X, nfactors, rotate, fm, use = 'pairwise')", parallel = "psych::fa.parallel(X)")
meta <- list(meta = fixture_meta("validation/r/efa.R", efa_calls, setdiff(names(versions), "R"), tolerances),
             generated_by = "validation/r/efa.R", date = as.character(Sys.Date()),
             versions = versions, tolerances = tolerances,
             notes = paste("Loadings are compared after aligning factor order and sign.",
                           "Parallel analysis: observed eigenvalues exactly; simulated means within Monte Carlo error."))
write_json(c(meta, list(dataset = "lavaan::HolzingerSwineford1939[, x1:x9]"), hs_res),
           "tests/reference/efa_hs.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
write_json(c(meta, list(dataset = "psych::bfi[, 1:25]"), bfi_res),
           "tests/reference/efa_bfi.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("done\n")
