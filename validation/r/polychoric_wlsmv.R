# Reference values for cips_stats.factor.polychoric and cips_stats.factor.wls.
#
# Run from the repository root:  Rscript validation/r/polychoric_wlsmv.R
# Writes tests/reference/bfi.csv (psych's bfi: 25 Likert items + gender, public data)
# and tests/reference/polychoric_*.json, tests/reference/wlsmv_*.json.
# Each fixture records the R call, R and package versions, the date and the
# tolerance the Python tests use.
suppressMessages({
  library(lavaan)
  library(psych)
  library(jsonlite)
})

out_dir <- "tests/reference"
versions <- list(R = R.version.string,
                 lavaan = as.character(packageVersion("lavaan")),
                 psych = as.character(packageVersion("psych")),
                 jsonlite = as.character(packageVersion("jsonlite")))
today <- format(Sys.time(), "%Y-%m-%d", tz = "UTC")

source(file.path("validation", "r", "meta.R"))
write_fixture <- function(name, call, tolerance, values) {
  meta <- fixture_meta("validation/r/polychoric_wlsmv.R", call, setdiff(names(versions), "R"), tolerance)
  obj <- c(list(meta = meta, r_call = call, versions = versions, date = today, tolerance = tolerance), values)
  writeLines(toJSON(obj, digits = NA, auto_unbox = TRUE, matrix = "rowmajor", na = "null"),
             file.path(out_dir, paste0(name, ".json")))
}

items <- colnames(psych::bfi)[1:25]
bfi <- psych::bfi[, c(items, "gender")]
write.csv(bfi, file.path(out_dir, "bfi.csv"), row.names = FALSE, na = "")

# ---------------------------------------------------------------- polychorics
# (1) all 25 items, pairwise present (the data hold missing values)
fit <- lavCor(bfi[, items], ordered = items, missing = "pairwise", output = "fit")
ss <- lavInspect(fit, "sampstat")
write_fixture("polychoric_bfi_pairwise",
  "lavCor(bfi[, 1:25], ordered = names, missing = 'pairwise', output = 'fit'); lavInspect(fit, 'sampstat')",
  list(corr = 1e-6, thresholds = 1e-8),
  list(items = items, n = nrow(bfi), corr = unclass(ss$cov), thresholds = unname(ss$th),
       threshold_names = names(ss$th)))

# (2) complete cases: lavaan and psych (correct = 0, no smoothing, global thresholds)
cc <- na.omit(bfi[, items])
fit_cc <- lavCor(cc, ordered = items, output = "fit")
ss_cc <- lavInspect(fit_cc, "sampstat")
pp <- psych::polychoric(cc, correct = 0, smooth = FALSE, global = TRUE)
write_fixture("polychoric_bfi_complete",
  paste("cc <- na.omit(bfi[, 1:25]); lavCor(cc, ordered = names, output = 'fit');",
        "psych::polychoric(cc, correct = 0, smooth = FALSE, global = TRUE)"),
  list(corr_lavaan = 1e-6, thresholds = 1e-8, corr_psych = 1e-4),
  list(items = items, n = nrow(cc), corr = unclass(ss_cc$cov), thresholds = unname(ss_cc$th),
       psych_rho = unclass(pp$rho), psych_tau = unclass(pp$tau)))

# (3) psych with missing values (pairwise)
pp_na <- psych::polychoric(bfi[, items], correct = 0, smooth = FALSE, global = TRUE)
write_fixture("polychoric_bfi_psych_pairwise",
  "psych::polychoric(bfi[, 1:25], correct = 0, smooth = FALSE, global = TRUE)",
  list(corr_psych = 1e-4),
  list(items = items, psych_rho = unclass(pp_na$rho), psych_tau = unclass(pp_na$tau)))

# (4) Gamma (NACOV) of thresholds + polychorics, 8 items, pairwise
it8 <- items[1:8]
fit8 <- lavCor(bfi[, it8], ordered = it8, missing = "pairwise", output = "fit",
               estimator = "WLSMV", se = "robust.sem")
g8 <- lavInspect(fit8, "gamma")
write_fixture("polychoric_bfi8_gamma",
  paste("lavCor(bfi[, 1:8], ordered = names, missing = 'pairwise', output = 'fit',",
        "estimator = 'WLSMV', se = 'robust.sem'); lavInspect(fit, 'gamma')"),
  list(gamma_rel = 1e-6),
  list(items = it8, n = nrow(bfi), gamma = unname(unclass(g8)), labels = colnames(g8)))



# (5) items with different numbers of categories (2, 3, 6) and missing values
mixed <- bfi[, c("A1", "A2", "A3", "gender")]
mixed$A1 <- c(1, 1, 2, 2, 3, 3)[mixed$A1]          # 6 -> 3 categories
mixed$A3 <- as.integer(mixed$A3 >= 4) + 1          # 6 -> 2 categories
fitm <- lavCor(mixed, ordered = names(mixed), missing = "pairwise", output = "fit",
               estimator = "WLSMV", se = "robust.sem")
ssm <- lavInspect(fitm, "sampstat")
gm <- lavInspect(fitm, "gamma")
write_fixture("polychoric_bfi_mixed_categories",
  paste("m <- bfi[, c('A1','A2','A3','gender')]; m$A1 <- c(1,1,2,2,3,3)[m$A1]; m$A3 <- (m$A3 >= 4) + 1;",
        "lavCor(m, ordered = names(m), missing = 'pairwise', output = 'fit', estimator = 'WLSMV',",
        "se = 'robust.sem'); lavInspect(fit, 'sampstat'); lavInspect(fit, 'gamma')"),
  list(corr = 1e-6, thresholds = 1e-8, gamma_rel = 1e-6),
  list(items = names(mixed), corr = unclass(ssm$cov), thresholds = unname(ssm$th),
       threshold_names = names(ssm$th), gamma = unname(unclass(gm)), labels = colnames(gm)))

# ---------------------------------------------------------------- WLSMV CFA
wlsmv_fixture <- function(name, call, fit) {
  pe <- parameterEstimates(fit, standardized = TRUE, remove.nonfree = FALSE)
  if (is.null(pe$group)) pe$group <- 1L
  fm <- fitMeasures(fit)
  ss <- fit@test$scaled.shifted
  write_fixture(name, call,
    list(est = 1e-4, se_rel = 1e-3, chi2_rel = 1e-4, chi2_scaled_rel = 1e-3, index = 1e-4),
    list(nobs = lavInspect(fit, "nobs"), ntotal = lavInspect(fit, "ntotal"),
         converged = lavInspect(fit, "converged"),
         parameters = pe[, intersect(c("lhs", "op", "rhs", "group", "est", "se", "std.lv", "std.all"),
                                     names(pe))],
         fit_measures = as.list(fm),
         shift = ss$shift.parameter, scaling_factor = ss$scaling.factor,
         stat_scaled = ss$stat))
}

five <- "
A =~ A1 + A2 + A3 + A4 + A5
C =~ C1 + C2 + C3 + C4 + C5
E =~ E1 + E2 + E3 + E4 + E5
N =~ N1 + N2 + N3 + N4 + N5
O =~ O1 + O2 + O3 + O4 + O5
"
fit5 <- cfa(five, data = bfi, ordered = items, estimator = "WLSMV", missing = "pairwise")
wlsmv_fixture("wlsmv_bfi5",
  "cfa(five_factor_model, data = bfi, ordered = items, estimator = 'WLSMV', missing = 'pairwise')", fit5)

two <- "
A =~ A1 + A2 + A3 + A4 + A5
C =~ C1 + C2 + C3 + C4 + C5
"
sub <- bfi[1:800, ]
fit2 <- cfa(two, data = sub, ordered = items[1:10], estimator = "WLSMV", missing = "pairwise")
wlsmv_fixture("wlsmv_bfi2_missing",
  "cfa(two_factor_model, data = bfi[1:800, ], ordered = items[1:10], estimator = 'WLSMV', missing = 'pairwise')",
  fit2)

fit2s <- cfa(two, data = sub, ordered = items[1:10], estimator = "WLSMV", missing = "pairwise",
             std.lv = TRUE)
wlsmv_fixture("wlsmv_bfi2_stdlv",
  "cfa(two_factor_model, data = bfi[1:800, ], ordered = items[1:10], estimator = 'WLSMV', missing = 'pairwise', std.lv = TRUE)",
  fit2s)

fitmg <- cfa(two, data = bfi, ordered = items[1:10], estimator = "WLSMV", missing = "pairwise",
             group = "gender", group.equal = c("thresholds", "loadings"))
wlsmv_fixture("wlsmv_bfi2_groups",
  paste("cfa(two_factor_model, data = bfi, ordered = items[1:10], estimator = 'WLSMV', missing = 'pairwise',",
        "group = 'gender', group.equal = c('thresholds', 'loadings'))"), fitmg)

fitcf <- cfa(two, data = bfi, ordered = items[1:10], estimator = "WLSMV", missing = "pairwise",
             group = "gender")
wlsmv_fixture("wlsmv_bfi2_configural",
  "cfa(two_factor_model, data = bfi, ordered = items[1:10], estimator = 'WLSMV', missing = 'pairwise', group = 'gender')",
  fitcf)

fitd <- cfa(two, data = sub, ordered = items[1:10], estimator = "DWLS", missing = "pairwise")
wlsmv_fixture("wlsmv_bfi2_dwls",
  "cfa(two_factor_model, data = bfi[1:800, ], ordered = items[1:10], estimator = 'DWLS', missing = 'pairwise')",
  fitd)
fitw <- cfa(two, data = sub, ordered = items[1:10], estimator = "WLS", missing = "pairwise")
wlsmv_fixture("wlsmv_bfi2_wls",
  "cfa(two_factor_model, data = bfi[1:800, ], ordered = items[1:10], estimator = 'WLS', missing = 'pairwise')",
  fitw)

# Satorra (2000) scaled-shifted difference test of nested WLSMV models (lavTestLRT's default)
lrt <- lavTestLRT(fitcf, fitmg)
write_fixture("wlsmv_difftest_groups",
  "lavTestLRT(configural, equal_thresholds_loadings)  # method = 'satorra.2000', scaled.shifted",
  list(chi2_diff_rel = 1e-3, p = 1e-4),
  list(chisq_diff = lrt[["Chisq diff"]][2], df_diff = lrt[["Df diff"]][2], pvalue = lrt[["Pr(>Chisq)"]][2],
       method = attr(lrt, "heading")))

# sampling weights (deterministic, 4 distinct values), single group
sub_w <- sub[, items[1:10]]
sub_w$w <- rep(c(0.5, 1, 2, 1.5), length.out = nrow(sub_w))
fitsw <- cfa(two, data = sub_w, ordered = items[1:10], estimator = "WLSMV", missing = "pairwise",
             sampling.weights = "w")
wlsmv_fixture("wlsmv_bfi2_weights",
  paste("sub_w <- bfi[1:800, 1:10]; sub_w$w <- rep(c(0.5, 1, 2, 1.5), length.out = 800);",
        "cfa(two_factor_model, data = sub_w, ordered = items[1:10], estimator = 'WLSMV', missing = 'pairwise',",
        "sampling.weights = 'w')"), fitsw)
ssw <- lavInspect(fitsw, "sampstat")
write_fixture("polychoric_bfi_weights",
  "same fit as wlsmv_bfi2_weights; lavInspect(fit, 'sampstat'); lavInspect(fit, 'gamma')",
  list(corr = 1e-6, thresholds = 1e-8, gamma_rel = 1e-6),
  list(items = items[1:10], corr = unclass(ssw$cov), thresholds = unname(ssw$th),
       gamma = unname(unclass(lavInspect(fitsw, "gamma")))))
