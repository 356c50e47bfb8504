# Reference values for issue 10 item 2 (continuous indicators): every fit measure lavaan 0.6-14 reports
# for ML with FIML, MLR (with and without FIML) and ML by group, on data no other fixture uses -- psych's
# bfi Neuroticism and Extraversion items treated as continuous, with their own missing answers (183 of
# 2,800 respondents miss at least one item) -- plus lavaan's WRMR, which fitMeasures() gives for
# continuous data only when asked by name: sqrt(chisq / e), e = the number of sample statistics of
# group 1 (variances and covariances, and means when the model has them).
#
# Run from the repository root:  Rscript validation/r/fit_measures_issue10.R
# Writes tests/reference/cfa_bfi_ne_fit_measures.json with the `meta` header (validation/r/meta.R).
suppressMessages({
  library(lavaan)
  library(psych)
  library(jsonlite)
})
source(file.path("validation", "r", "meta.R"))

ne_items <- c(paste0("N", 1:5), paste0("E", 1:5))
ne_model <- "N =~ N1 + N2 + N3 + N4 + N5\nE =~ E1 + E2 + E3 + E4 + E5"
d <- psych::bfi[, c(ne_items, "gender")]
fm <- function(fit) c(as.list(fitMeasures(fit)), list(wrmr = fitMeasures(fit, "wrmr")[[1]]))
calls <- list(
  ml_fiml = "cfa(ne_model, d, missing = 'ml')",
  mlr_fiml = "cfa(ne_model, d, missing = 'ml', estimator = 'MLR')",
  mlr_listwise = "cfa(ne_model, d, estimator = 'MLR')",
  ml_listwise = "cfa(ne_model, d)",
  ml_fiml_groups = "cfa(ne_model, d, missing = 'ml', group = 'gender')"
)
fits <- lapply(calls, function(cl) eval(parse(text = cl)))
cases <- lapply(names(fits), function(k) list(id = k, call = calls[[k]], nobs = sum(lavInspect(fits[[k]], "nobs")),
                                              fit = fm(fits[[k]])))
write_fixture(list(model = ne_model, items = ne_items, data = "tests/reference/bfi.csv (psych::bfi)",
                   cases = cases),
              "tests/reference/cfa_bfi_ne_fit_measures.json",
              generated_by = "validation/r/fit_measures_issue10.R",
              call = calls, packages = c("lavaan", "psych"),
              tolerance = list(chisq = 1e-6, index = 1e-5, robust_fiml = 1e-5))
