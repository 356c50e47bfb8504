# Reference values for cips_stats.factor.cfa (tests/test_cfa.py).
# Run from the repository root:  Rscript validation/r/cfa.R
# Writes tests/reference/cfa_*.json (+ the data fixtures cfa_hs1939*.csv).
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
source(file.path("validation", "r", "meta.R"))   # the one `meta` header (tests/test_fixture_meta.py)
out_dir <- "tests/reference"
hs <- HolzingerSwineford1939
write.csv(hs, file.path(out_dir, "cfa_hs1939.csv"), row.names = FALSE)

# HS with values knocked out by a seeded rule (MCAR 8% per item + MAR: x9 missing
# with probability .4 when x1 is in its top quintile)
set.seed(1939)
hsm <- hs
for (v in paste0("x", 1:9)) hsm[[v]][runif(nrow(hsm)) < 0.08] <- NA
top <- !is.na(hs$x1) & hs$x1 > quantile(hs$x1, 0.8)
hsm$x9[top & runif(nrow(hsm)) < 0.4] <- NA
write.csv(hsm, file.path(out_dir, "cfa_hs1939_missing.csv"), row.names = FALSE)

HS.model <- "visual  =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed   =~ x7 + x8 + x9"

dump_fit <- function(fit, name, call, tol, mi = FALSE, extra = list()) {
  fm <- fitMeasures(fit)
  pe <- parameterEstimates(fit, standardized = TRUE, remove.eq = TRUE, remove.def = TRUE)
  if (is.null(pe$group)) pe$group <- 1L
  keep <- intersect(c("lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue",
                      "ci.lower", "ci.upper", "std.lv", "std.all"), names(pe))
  res <- list(
    call = call,
    r_version = R.version.string,
    lavaan_version = as.character(packageVersion("lavaan")),
    date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
    tolerance = tol,
    options = lavInspect(fit, "options")[c("estimator", "information", "h1.information", "se", "test",
                                            "missing", "meanstructure", "likelihood")],
    converged = lavInspect(fit, "converged"),
    nobs = lavInspect(fit, "nobs"),
    fit = as.list(unclass(fm)),
    parameters = pe[, keep]
  )
  if (mi) {
    m <- modindices(fit)
    if (is.null(m$group)) m$group <- 1L
    res$modindices <- m[, c("lhs", "op", "rhs", "group", "mi", "epc", "sepc.lv", "sepc.all")]
  }
  res <- c(list(meta = fixture_meta("validation/r/cfa.R", call, "lavaan", tol)), res, extra)
  write_json(res, file.path(out_dir, paste0("cfa_", name, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE, na = "null")
}

tol <- list(chi2 = 1e-3, fit_index = 1e-4, est = 1e-3, se = 1e-3)

f <- cfa(HS.model, data = hs)
dump_fit(f, "hs_ml", "cfa(HS.model, data = HolzingerSwineford1939)", tol, mi = TRUE)

f <- cfa(HS.model, data = hs, estimator = "MLR")
dump_fit(f, "hs_mlr", "cfa(HS.model, data = HolzingerSwineford1939, estimator = 'MLR')", tol, mi = TRUE)

f <- cfa(HS.model, data = hs, std.lv = TRUE)
dump_fit(f, "hs_ml_stdlv", "cfa(HS.model, data = HolzingerSwineford1939, std.lv = TRUE)", tol)

f <- cfa(HS.model, data = hs, group = "school", group.equal = "loadings")
dump_fit(f, "hs_group_loadings",
         "cfa(HS.model, data = HolzingerSwineford1939, group = 'school', group.equal = 'loadings')", tol,
         mi = TRUE)

f <- cfa(HS.model, data = hs, group = "school", group.equal = c("loadings", "intercepts"),
         group.partial = c("x3~1", "visual=~x2"), estimator = "MLR")
dump_fit(f, "hs_group_scalar_mlr",
         paste("cfa(HS.model, data = HolzingerSwineford1939, group = 'school',",
               "group.equal = c('loadings', 'intercepts'), group.partial = c('x3~1', 'visual=~x2'),",
               "estimator = 'MLR')"), tol)

f <- cfa(HS.model, data = hsm, missing = "ml")
dump_fit(f, "hs_fiml", "cfa(HS.model, data = hs_missing, missing = 'ml')  # hs_missing = cfa_hs1939_missing.csv",
         tol, mi = TRUE)

f <- cfa(HS.model, data = hsm, missing = "ml", estimator = "MLR")
dump_fit(f, "hs_fiml_mlr",
         "cfa(HS.model, data = hs_missing, missing = 'ml', estimator = 'MLR')  # hs_missing = cfa_hs1939_missing.csv",
         tol)

f <- cfa(HS.model, data = hsm, missing = "ml", estimator = "MLR", group = "school", group.equal = "loadings")
dump_fit(f, "hs_fiml_mlr_group",
         paste("cfa(HS.model, data = hs_missing, missing = 'ml', estimator = 'MLR', group = 'school',",
               "group.equal = 'loadings')  # hs_missing = cfa_hs1939_missing.csv"), tol)

# simulated 10-factor survey (written by validation/make_cfa_sim.py), complete data
if (file.exists(file.path(out_dir, "cfa_sim10.csv"))) {
  sim <- read.csv(file.path(out_dir, "cfa_sim10.csv"))
  items <- setdiff(names(sim), "id")
  fac <- split(items, sub("_[0-9]+$", "", items))
  mod <- paste(sprintf("%s =~ %s", names(fac), sapply(fac, paste, collapse = " + ")), collapse = "\n")
  f <- cfa(mod, data = sim)
  dump_fit(f, "sim10_ml", "cfa(model, data = cfa_sim10.csv)", tol, extra = list(model = mod))
  f <- cfa(mod, data = sim, estimator = "MLR")
  dump_fit(f, "sim10_mlr", "cfa(model, data = cfa_sim10.csv, estimator = 'MLR')", tol, extra = list(model = mod))
}
# a cs.simulate() officials sample with its missing answers (validation/make_cfa_sim.py), FIML
if (file.exists(file.path(out_dir, "cfa_simcips.csv"))) {
  sim <- read.csv(file.path(out_dir, "cfa_simcips.csv"))
  mod <- readLines(file.path(out_dir, "cfa_simcips_model.txt"))
  f <- cfa(paste(mod, collapse = "\n"), data = sim, missing = "ml")
  dump_fit(f, "simcips_fiml", "cfa(model, data = cfa_simcips.csv, missing = 'ml')", tol,
           extra = list(model = paste(mod, collapse = "\n")))
}
