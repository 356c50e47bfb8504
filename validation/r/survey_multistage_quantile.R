# Reference fixtures for issue 10 items 5 and 6: two-stage designs with an fpc at both stages
# (multistage and ultimate-cluster variance), svyquantile (Woodruff and replicate intervals), and
# bounded / logit calibration.
#
# Run from the repository root:   Rscript validation/r/survey_multistage_quantile.R
# Reads the data subsets written by validation/r/survey.R (tests/reference/survey_api*.csv) and the
# replicate weights it stored (survey_repw_*.csv.gz), and writes
#   tests/reference/survey_multistage.json           svymean/svytotal/svyratio on
#                                                    svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2)
#   tests/reference/survey_quantile.json             svyquantile (qrule = "math", interval.type = "mean"
#                                                    and, for replicate designs, "quantile")
#   tests/reference/survey_calibration_bounds.json   calibrate(..., bounds =, calfun = "logit" |
#                                                    "linear" | "raking"): weights and SEs
# The test suite reads only these files; it never needs R.
suppressPackageStartupMessages(library(survey))
library(jsonlite)
source(file.path("validation", "r", "meta.R"))

out <- "tests/reference"
# the one meta header (validation/r/meta.R); call = each case's R call, by case id
meta <- function(tol, note = "", cases = list()) fixture_meta(
  "validation/r/survey_multistage_quantile.R",
  setNames(lapply(cases, function(x) x$r_call), sapply(cases, function(x) x$id)), c("survey", "jsonlite"), tol,
  note = note)
wj <- function(x, f) write_json(x, file.path(out, f), auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")

clus2 <- read.csv(file.path(out, "survey_apiclus2.csv"))
clus1 <- read.csv(file.path(out, "survey_apiclus1.csv"))
strat <- read.csv(file.path(out, "survey_apistrat.csv"))
options(survey.lonely.psu = "fail")

# ---- two-stage designs with fpc at both stages ---------------------------------------------------
d2 <- svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = clus2)
d2w <- svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, weights = ~pw, data = clus2)
# the same design given sampling fractions instead of population sizes
clus2$frac1 <- as.vector(table(clus2$dnum)[as.character(clus2$dnum)] * 0 + length(unique(clus2$dnum))) / clus2$fpc1
clus2$frac2 <- as.vector(ave(clus2$snum, clus2$dnum, FUN = length)) / clus2$fpc2
d2frac <- svydesign(id = ~dnum + snum, fpc = ~frac1 + frac2, weights = ~pw, data = clus2)
ms_case <- function(id, des, call, statistic, y, denominator = NULL, domain = NULL, ultimate = FALSE,
                    fpc = c("fpc1", "fpc2")) {
  options(survey.ultimate.cluster = ultimate)
  if (!is.null(domain)) des <- eval(bquote(subset(des, .(as.name(domain$column)) == .(domain$value))))
  f <- as.formula(paste0("~", y))
  est <- switch(statistic,
                mean = svymean(f, des, na.rm = TRUE), total = svytotal(f, des, na.rm = TRUE),
                ratio = svyratio(f, as.formula(paste0("~", denominator)), des, na.rm = TRUE))
  v <- if (statistic == "ratio") as.numeric(est$var) else as.numeric(vcov(est))
  options(survey.ultimate.cluster = FALSE)
  list(id = id, data = "survey_apiclus2.csv", weight = "pw", cluster = c("dnum", "snum"), fpc = fpc,
       statistic = statistic, y = y, denominator = denominator, domain = domain,
       variance = if (ultimate) "ultimate" else "multistage",
       r_call = paste0(if (ultimate) "options(survey.ultimate.cluster = TRUE); " else "", call, "; ",
                       switch(statistic, mean = "svymean", total = "svytotal", ratio = "svyratio"),
                       "(~", y, if (!is.null(denominator)) paste0(", ~", denominator) else "",
                       ", ", if (is.null(domain)) "design" else sprintf("subset(design, %s == \"%s\")",
                       domain$column, domain$value), ", na.rm = TRUE)"),
       estimate = as.numeric(coef(est)), var = v, se = sqrt(v), df = degf(des))
}
c2 <- "design <- svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, weights = ~pw, data = apiclus2)"
ms <- list(
  ms_case("clus2fpc_mean", d2w, c2, "mean", "api00"),
  ms_case("clus2fpc_mean_ultimate", d2w, c2, "mean", "api00", ultimate = TRUE),
  ms_case("clus2fpc_total", d2w, c2, "total", "enroll"),
  ms_case("clus2fpc_total_ultimate", d2w, c2, "total", "enroll", ultimate = TRUE),
  ms_case("clus2fpc_ratio", d2w, c2, "ratio", "api00", "api99"),
  ms_case("clus2fpc_domain_mean", d2w, c2, "mean", "api00", domain = list(column = "stype", value = "E")),
  ms_case("clus2fpc_domain_total_ultimate", d2w, c2, "total", "enroll", domain = list(column = "stype", value = "H"),
          ultimate = TRUE),
  ms_case("clus2frac_mean", d2frac, sub("fpc1 \\+ fpc2", "frac1 + frac2", c2), "mean", "api00",
          fpc = c("frac1", "frac2"))
)
# a stratified two-stage design: the districts split into two strata (odd and even dnum), each stratum's
# district population half of apiclus2's fpc1 (rounded), nested PSUs
clus2$dstratum <- ifelse(clus2$dnum %% 2 == 1, "odd", "even")
clus2$fpc1s <- ifelse(clus2$dstratum == "odd", 379, 378)
d2s <- svydesign(id = ~dnum + snum, strata = ~dstratum, fpc = ~fpc1s + fpc2, weights = ~pw, data = clus2, nest = TRUE)
c2s <- "design <- svydesign(id = ~dnum + snum, strata = ~dstratum, fpc = ~fpc1s + fpc2, weights = ~pw, data = apiclus2, nest = TRUE)"
ms <- c(ms, list(
  ms_case("clus2strat_mean", d2s, c2s, "mean", "api00", fpc = c("fpc1s", "fpc2")),
  ms_case("clus2strat_mean_ultimate", d2s, c2s, "mean", "api00", ultimate = TRUE, fpc = c("fpc1s", "fpc2")),
  ms_case("clus2strat_total_domain", d2s, c2s, "total", "enroll", domain = list(column = "stype", value = "M"),
          fpc = c("fpc1s", "fpc2"))))
for (i in seq_along(ms)) if (startsWith(ms[[i]]$id, "clus2strat")) ms[[i]]$strata <- "dstratum"
write.csv(clus2, file.path(out, "survey_apiclus2_frac.csv"), row.names = FALSE)
for (i in seq_along(ms)) if (ms[[i]]$id == "clus2frac_mean" || startsWith(ms[[i]]$id, "clus2strat"))
  ms[[i]]$data <- "survey_apiclus2_frac.csv"
wj(list(meta = meta(1e-8, paste(
  "Two-stage cluster sample apiclus2 (districts, then schools) with an fpc at both stages:",
  "R's default multistage variance (survey:::multistage) and the ultimate-cluster variance",
  "(options(survey.ultimate.cluster = TRUE)). weights = ~pw equal the fpc-implied weights",
  sprintf("(max |pw - weights(svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2))| = %.3g).",
          max(abs(clus2$pw - weights(d2))))), ms), cases = ms), "survey_multistage.json")

# ---- quantiles ----------------------------------------------------------------------------------
probs <- c(0.25, 0.5, 0.75)
q_rows <- function(q) {
  m <- q[[1]]
  list(quantile = as.numeric(rownames(m)), estimate = as.numeric(m[, 1]), ci_low = as.numeric(m[, 2]),
       ci_high = as.numeric(m[, 3]), se = as.numeric(m[, 4]))
}
q_case <- function(id, data, design, call, des, y = "api00", interval = "mean", domain = NULL, ultimate = FALSE,
                   alpha = 0.05, extra = list()) {
  options(survey.ultimate.cluster = ultimate)
  if (!is.null(domain)) des <- eval(bquote(subset(des, .(as.name(domain$column)) == .(domain$value))))
  q <- svyquantile(as.formula(paste0("~", y)), des, probs, interval.type = interval, alpha = alpha)
  options(survey.ultimate.cluster = FALSE)
  c(list(id = id, data = data, y = y, interval = interval, domain = domain, ci = 1 - alpha,
         variance = if (ultimate) "ultimate" else "multistage", df = degf(des),
         r_call = paste0(if (ultimate) "options(survey.ultimate.cluster = TRUE); " else "", call,
                         sprintf("; svyquantile(~%s, %s, c(0.25, 0.5, 0.75), interval.type = \"%s\", alpha = %g)",
                                 y, if (is.null(domain)) "design" else sprintf("subset(design, %s == \"%s\")",
                                 domain$column, domain$value), interval, alpha))),
    design, extra, q_rows(q))
}
design2 <- list(weight = "pw", strata = NULL, cluster = c("dnum", "snum"), fpc = c("fpc1", "fpc2"))
dstrat <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = strat)
cs <- "design <- svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat)"
designS <- list(weight = "pw", strata = "stype", cluster = NULL, fpc = "fpc")
c2d <- "design <- svydesign(id = ~dnum + snum, fpc = ~fpc1 + fpc2, data = apiclus2)"
rep_q <- function(id, file, type, scale, rscales, mse, interval) {
  rw <- as.matrix(read.csv(gzfile(file.path(out, file)), header = FALSE))
  rdes <- svrepdesign(variables = clus1, repweights = rw, weights = clus1$pw, combined.weights = TRUE,
                      type = "other", scale = scale, rscales = rscales, mse = mse)
  q_case(id, "survey_apiclus1.csv",
         list(weight = "pw", strata = NULL, cluster = NULL, fpc = NULL),
         sprintf("design <- svrepdesign(variables = apiclus1, repweights = <%s>, weights = ~pw, combined.weights = TRUE, type = \"other\", scale = %.17g, rscales = <%s rscales>, mse = %s)",
                 file, scale, type, mse), rdes, interval = interval,
         extra = list(replicates_file = file, scale = scale, rscales = rscales, mse = mse, replicate_type = type))
}
rep_json <- fromJSON(file.path(out, "survey_replicate.json"), simplifyVector = FALSE)
rc <- function(id) Filter(function(x) x$id == id, rep_json$cases)[[1]]
jk <- rc("clus1_jk1"); bt <- rc("clus1_boot")
qs <- list(
  q_case("clus2fpc_default", "survey_apiclus2.csv", design2, c2d, d2),
  q_case("clus2fpc_ultimate", "survey_apiclus2.csv", design2, c2d, d2, ultimate = TRUE),
  q_case("clus2fpc_domain", "survey_apiclus2.csv", design2, c2d, d2, domain = list(column = "stype", value = "E")),
  q_case("strat_default", "survey_apistrat.csv", designS, cs, dstrat),
  q_case("strat_enroll_90", "survey_apistrat.csv", designS, cs, dstrat, y = "enroll", alpha = 0.1),
  rep_q("clus1_jk1_mean", jk$replicates_file, "JK1", jk$scale, unlist(jk$rscales), FALSE, "mean"),
  rep_q("clus1_boot_quantile", bt$replicates_file, "bootstrap", bt$scale, unlist(bt$rscales), FALSE, "quantile"),
  rep_q("clus1_boot_mean", bt$replicates_file, "bootstrap", bt$scale, unlist(bt$rscales), FALSE, "mean"),
  # Woodruff on a raked design: the CDF's SE accounts for the raking (svyrecvar's backfitting sweeps)
  q_case("clus1_raked", "survey_apiclus1.csv", list(weight = "pw", strata = NULL, cluster = "dnum", fpc = "fpc"),
         paste("design <- rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1), list(~stype,",
               "~sch.wide), list(data.frame(stype = c('E','H','M'), Freq = c(4421, 755, 1018)),",
               "data.frame(sch.wide = c('No','Yes'), Freq = c(1072, 5122))), control = list(maxit = 200, epsilon = 1e-13))"),
         rake(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = clus1), list(~stype, ~sch.wide),
              list(data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018)),
                   data.frame(sch.wide = c("No", "Yes"), Freq = c(1072, 5122))),
              control = list(maxit = 200, epsilon = 1e-13)),
         extra = list(rake = list(stype = list(E = 4421, H = 755, M = 1018), sch.wide = list(No = 1072, Yes = 5122))))
)
wj(list(meta = meta(1e-8, paste(
  "svyquantile in survey 4.1-1 with its defaults: qrule = \"math\" (the inverse of the weighted",
  "empirical CDF: the smallest x with F(x) >= p) and interval.type = \"mean\" (Woodruff: a t interval",
  "with degf(design) df for the CDF at the estimate, mapped back through the same qrule);",
  "se = (ci_high - ci_low) / (2 qt(1 - alpha/2, df)). interval.type = \"quantile\" (replicate designs):",
  "the replicate quantiles' svrVar variance, estimate -/+ t * SE."), qs), cases = qs), "survey_quantile.json")

# ---- bounded and logit calibration -------------------------------------------------------------
dclus1 <- svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = clus1)
api99_total <- 3914069   # sum(apipop$api99)
data(api)
api99_total <- sum(apipop$api99)
bc_case <- function(id, calfun, bounds, formula, pop, margins, numeric_totals = NULL, des = dclus1,
                    dname = "survey_apiclus1.csv", design = list(weight = "pw", strata = NULL, cluster = "dnum",
                                                                  fpc = "fpc"), dcall = "dclus1") {
  cal <- calibrate(des, formula, pop, bounds = bounds, calfun = calfun, epsilon = 1e-12, maxit = 200)
  g <- weights(cal) / weights(des)
  est <- list(mean_api00 = svymean(~api00, cal), total_enroll = svytotal(~enroll, cal),
              domain_mean_api00 = svymean(~api00, subset(cal, comp.imp == "Yes")))
  res <- lapply(names(est), function(s) list(statistic = s, estimate = as.numeric(coef(est[[s]])),
                                             var = as.numeric(vcov(est[[s]]))))
  c(list(id = id, data = dname, method = calfun, bounds = bounds, margins = margins,
         numeric_totals = numeric_totals, domain = list(column = "comp.imp", value = "Yes"),
         r_call = sprintf("calibrate(%s, %s, c(%s), bounds = c(%g, %g), calfun = \"%s\", epsilon = 1e-12, maxit = 200)",
                          dcall, paste(deparse(formula), collapse = ""), paste(format(pop, digits = 17), collapse = ", "),
                          bounds[1], bounds[2], calfun),
         weights = as.numeric(weights(cal)), g_range = range(g), results = res), design)
}
m_stype <- list(E = 4421, H = 755, M = 1018)
m_schwide <- list(No = 1072, Yes = 5122)
bcs <- list(
  bc_case("clus1_logit", "logit", c(0.7, 1.7), ~stype + sch.wide, c(6194, 755, 1018, 5122),
          list(stype = m_stype, sch.wide = m_schwide)),
  bc_case("clus1_logit_numeric", "logit", c(0.35, 1.7), ~stype + api99, c(6194, 755, 1018, api99_total),
          list(stype = m_stype), list(api99 = api99_total)),
  bc_case("clus1_linear_bounded", "linear", c(0.85, 1.7), ~stype + sch.wide, c(6194, 755, 1018, 5122),
          list(stype = m_stype, sch.wide = m_schwide)),
  bc_case("clus1_raking_bounded", "raking", c(0.85, 1.75), ~stype + sch.wide, c(6194, 755, 1018, 5122),
          list(stype = m_stype, sch.wide = m_schwide)),
  bc_case("strat_logit", "logit", c(0.965, 1.05), ~sch.wide + api99, c(6194, 5122, api99_total),
          list(sch.wide = m_schwide), list(api99 = api99_total), des = dstrat, dname = "survey_apistrat.csv",
          design = list(weight = "pw", strata = "stype", cluster = NULL, fpc = "fpc"), dcall = "dstrat")
)
wj(list(meta = meta(1e-8, paste(
  "Bounded calibration (survey::calibrate with bounds = c(lo, hi) on g = w/w0; survey:::grake Newton",
  "iterations with cal.logit, cal.linear or cal.raking) and SEs on the calibrated designs",
  "(residuals on qr(mm * sqrt(w0)) times g * sqrt(w0)). dclus1 = svydesign(id = ~dnum, weights = ~pw,",
  "fpc = ~fpc, data = apiclus1); dstrat = svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc,",
  "data = apistrat); populations from apipop."), bcs), cases = bcs), "survey_calibration_bounds.json")
cat("done\n")
