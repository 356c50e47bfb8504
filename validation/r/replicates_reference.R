# Reference values for cips_stats.replicates (tests/test_replicates.py).
# Run from the repository root:  Rscript validation/r/replicates_reference.R
# Writes tests/reference/replicates_survey.json: a small stratified, clustered sample,
# R survey's replicate weights (subbootstrap, bootstrap, JK1, JKn) and svymean's estimate
# and SE on each replicate design, so that the Python variance formula can be checked with
# R's own weights (random draws differ between R and numpy; the formula must not).
suppressPackageStartupMessages({library(survey); library(jsonlite)})
source(file.path("validation", "r", "meta.R"))
set.seed(20261122)
n_strata <- 3
rows <- list()
for (h in 1:n_strata) {
  n_psu <- c(4, 6, 3)[h]
  for (j in 1:n_psu) {
    m <- sample(2:4, 1)
    rows[[length(rows) + 1]] <- data.frame(stratum = paste0("s", h), psu = j,
                                           w = round(runif(m, 1, 4), 3),
                                           y = round(rnorm(m, 3 + h / 2, 1), 3))
  }
}
d <- do.call(rbind, rows)
d$row <- seq_len(nrow(d))
B <- 40
out <- list(seed = 20261122, replicates = B, data = d)
des_cl <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, data = d, nest = TRUE)
des_el <- svydesign(ids = ~1, strata = ~stratum, weights = ~w, data = d)
out$linearization_clustered <- list(call = "svymean(~y, svydesign(ids=~psu, strata=~stratum, weights=~w, nest=TRUE))",
                                    mean = unname(coef(svymean(~y, des_cl))), se = unname(SE(svymean(~y, des_cl))))
out$linearization_element <- list(call = "svymean(~y, svydesign(ids=~1, strata=~stratum, weights=~w))",
                                  mean = unname(coef(svymean(~y, des_el))), se = unname(SE(svymean(~y, des_el))))
cases <- list(
  subbootstrap_clustered = list(des = des_cl, type = "subbootstrap"),
  subbootstrap_element = list(des = des_el, type = "subbootstrap"),
  bootstrap_clustered = list(des = des_cl, type = "bootstrap"),
  JKn_clustered = list(des = des_cl, type = "JKn"),
  JK1_element = list(des = svydesign(ids = ~1, weights = ~w, data = d), type = "JK1")
)
for (nm in names(cases)) {
  cs <- cases[[nm]]
  set.seed(1)
  rep <- if (cs$type %in% c("subbootstrap", "bootstrap"))
    as.svrepdesign(cs$des, type = cs$type, replicates = B, compress = FALSE) else
    as.svrepdesign(cs$des, type = cs$type, compress = FALSE)
  est <- svymean(~y, rep)
  out[[nm]] <- list(
    call = sprintf("as.svrepdesign(<design>, type='%s'%s, compress=FALSE); svymean(~y, .)", cs$type,
                   if (cs$type %in% c("subbootstrap", "bootstrap")) sprintf(", replicates=%d", B) else ""),
    repweights = unclass(rep$repweights),   # rows x replicates multipliers (without sampling weights)
    scale = rep$scale, rscales = rep$rscales, mse = rep$mse,
    mean = unname(coef(est)), se = unname(SE(est))
  )
}
calls <- lapply(Filter(function(x) is.list(x) && !is.null(x$call), out), function(x) x$call)
doc <- c(list(meta = fixture_meta("validation/r/replicates_reference.R", calls, c("survey", "jsonlite"), 1e-10,
                                  note = "rtol 1e-10: R's replicate weights with our variance formula")), out)
writeLines(toJSON(doc, digits = NA, auto_unbox = TRUE, matrix = "rowmajor", dataframe = "columns", pretty = FALSE),
           "tests/reference/replicates_survey.json")
cat("wrote tests/reference/replicates_survey.json\n")
