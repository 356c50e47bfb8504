# Reference values for cips_stats.factor.invariance.
#
# Run from the repository root:   Rscript validation/r/invariance.R
# Writes tests/reference/invariance_hs.json (ML and MLR ladders on HolzingerSwineford1939 by
# school, lavTestLRT differences incl. Satorra-Bentler 2001, lavTestScore on the scalar model,
# a partial scalar model), tests/reference/invariance_bfi_ordinal.json (WLSMV ladder on bfi
# agreeableness/conscientiousness items by gender) and the data files
# tests/reference/invariance_hs_data.csv, tests/reference/invariance_bfi_data.csv.
suppressPackageStartupMessages({ library(lavaan); library(jsonlite); library(psych) })

versions <- list(R = R.version.string, lavaan = as.character(packageVersion("lavaan")),
                 semTools = as.character(packageVersion("semTools")))
tolerances <- list(chi2 = 1e-3, indices = 1e-4, estimates = 1e-3, delta_chi2 = 1e-3,
                   score_test = 1e-2)
fm_names <- c("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "srmr",
              "chisq.scaled", "df.scaled", "pvalue.scaled", "chisq.scaling.factor",
              "cfi.scaled", "tli.scaled", "rmsea.scaled", "cfi.robust", "tli.robust", "rmsea.robust")

fits_out <- function(fit) {
  fm <- fitMeasures(fit)
  as.list(fm[intersect(fm_names, names(fm))])
}
lrt_out <- function(a, b, method = "default") {
  t <- lavTestLRT(a, b, method = method)
  list(method = method, delta_chi2 = t[2, "Chisq diff"], delta_df = t[2, "Df diff"],
       p_value = t[2, "Pr(>Chisq)"])
}
levels_eq <- list(configural = "", metric = "loadings",
                  scalar = c("loadings", "intercepts"),
                  strict = c("loadings", "intercepts", "residuals"))

# ---------------------------------------------------------------- continuous: HS by school
HS <- HolzingerSwineford1939
write.csv(HS[, c("school", paste0("x", 1:9))], "tests/reference/invariance_hs_data.csv", row.names = FALSE)
model <- "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
hs <- list(dataset = "lavaan::HolzingerSwineford1939, group = 'school' (groups in order: Pasteur, Grant-White)",
           model = model, group_labels = NULL, estimators = list())
for (est in c("ML", "MLR")) {
  fits <- lapply(levels_eq, function(eq)
    cfa(model, data = HS, group = "school", estimator = est, group.equal = eq))
  hs$group_labels <- lavInspect(fits$configural, "group.label")
  meth <- if (est == "ML") "default" else "satorra.bentler.2001"
  e <- list(call = sprintf("cfa(model, data=HS, group='school', estimator='%s', group.equal=<level>)", est),
            lrt_method = meth, levels = lapply(fits, fits_out), lrt = list())
  nm <- names(fits)
  for (i in 2:length(fits)) e$lrt[[nm[i]]] <- lrt_out(fits[[i - 1]], fits[[i]], meth)
  # (satorra.bentler.2010 is not stored: lavaan warns that its M10 information matrix is not PD here)
  # univariate score tests for releasing each equality constraint of the scalar model
  sc <- lavTestScore(fits$scalar, univariate = TRUE, cumulative = FALSE)
  pt <- parTable(fits$scalar)
  lab2par <- function(l) {
    r <- pt[pt$plabel == l, ][1, ]
    sprintf("%s%s%s", r$lhs, r$op, ifelse(r$op == "~1", "", r$rhs))
  }
  uni <- sc$uni
  e$score_scalar <- list(call = "lavTestScore(scalar_fit, univariate=TRUE)",
                         parameter = vapply(as.character(uni$lhs), lab2par, ""),
                         X2 = uni$X2, df = uni$df, p_value = uni$p.value,
                         total_X2 = sc$test$X2, total_df = sc$test$df,
                         note = if (est == "MLR") "lavaan 0.6.14 falls back to the ordinary (non-robust) score test for MLR" else "")
  # a partial scalar model: intercepts of x3 and x7 free
  pfit <- cfa(model, data = HS, group = "school", estimator = est,
              group.equal = c("loadings", "intercepts"), group.partial = c("x3~1", "x7~1"))
  e$partial_scalar <- list(call = "... group.equal=c('loadings','intercepts'), group.partial=c('x3~1','x7~1')",
                           group_partial = c("x3~1", "x7~1"), fit = fits_out(pfit),
                           lrt_vs_metric = lrt_out(fits$metric, pfit, meth))
  hs$estimators[[est]] <- e
}

# ---------------------------------------------------------------- ordinal: bfi by gender
data(bfi, package = "psych")
items <- c(paste0("A", 1:5), paste0("C", 1:5))
bf <- bfi[complete.cases(bfi[, c(items, "gender")]), c(items, "gender")]
write.csv(bf, "tests/reference/invariance_bfi_data.csv", row.names = FALSE)
omodel <- "agree =~ A1 + A2 + A3 + A4 + A5\nconsc =~ C1 + C2 + C3 + C4 + C5"
olevels <- list(configural = "", metric = "loadings",
                scalar = c("loadings", "thresholds"))
ofits <- lapply(olevels, function(eq)
  cfa(omodel, data = bf, group = "gender", ordered = items, estimator = "WLSMV", group.equal = eq))
ord <- list(dataset = "psych::bfi complete cases of A1-A5, C1-C5, gender; group = 'gender'",
            model = omodel, group_labels = lavInspect(ofits$configural, "group.label"),
            call = "cfa(omodel, data=bf, group='gender', ordered=items, estimator='WLSMV', group.equal=<level>) (parameterization='delta')",
            n = nrow(bf), levels = lapply(ofits, fits_out), lrt = list())
for (i in 2:length(ofits)) ord$lrt[[names(ofits)[i]]] <- lrt_out(ofits[[i - 1]], ofits[[i]], "satorra.2000")

source(file.path("validation", "r", "meta.R"))
meta <- list(generated_by = "validation/r/invariance.R", date = as.character(Sys.Date()),
             versions = versions, tolerances = tolerances)
hs_calls <- list(ladder = "cfa(model, data=HS, group='school', estimator=<ML|MLR>, group.equal=<level>)",
                 lrt = "lavTestLRT(restricted, free, method = 'default' | 'satorra.bentler.2001')",
                 score = "lavTestScore(scalar_fit, univariate = TRUE)")
pk <- setdiff(names(versions), "R")
hs <- c(list(meta = fixture_meta("validation/r/invariance.R", hs_calls, pk, tolerances)), hs)
ord <- c(list(meta = fixture_meta("validation/r/invariance.R", ord$call, pk, tolerances)), ord)
write_json(c(meta, hs), "tests/reference/invariance_hs.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
write_json(c(meta, ord), "tests/reference/invariance_bfi_ordinal.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("done\n")
