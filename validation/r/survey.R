# Reference fixtures for cips_stats.estimate and cips_stats.weighting from R's survey package.
#
# Run from the repository root:   Rscript validation/r/survey.R
# Writes:
#   tests/reference/survey_apistrat.csv, survey_apiclus1.csv, survey_apiclus2.csv  (data subsets used)
#   tests/reference/survey_linearization.json   svymean/svytotal/svyratio SE, deff, confint, degf,
#                                              domains via subset(), lonely-PSU remedies
#   tests/reference/survey_replicate.json       as.svrepdesign(type = JK1/JKn/bootstrap/subbootstrap),
#                                              mse = FALSE/TRUE; SEs from R's own replicate weights
#   tests/reference/survey_repw_<name>.csv.gz   the replicate (analysis) weights R generated
#   tests/reference/survey_calibration.json     postStratify / rake / calibrate (linear, raking):
#                                              calibrated weights and SEs
# The test suite reads only these files; it never needs R.
suppressPackageStartupMessages(library(survey))
library(jsonlite)
source(file.path("validation", "r", "meta.R"))
data(api)

out <- "tests/reference"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
# the one meta header (validation/r/meta.R); call = each case's R call, by case id
meta <- function(tol, note = "", cases = list()) fixture_meta(
  "validation/r/survey.R", setNames(lapply(cases, function(x) x$r_call), sapply(cases, function(x) x$id)),
  c("survey", "jsonlite"), tol, note = note)

keep <- c("snum", "dnum", "stype", "sch.wide", "comp.imp", "awards", "api00", "api99", "enroll",
          "meals", "pw")
strat <- apistrat[, c(keep, "fpc")]
strat$schwide_yes <- as.numeric(strat$sch.wide == "Yes")
# a stratum with a single PSU, for the lonely-PSU fixtures
strat$stratum_lonely <- as.character(strat$stype)
strat$stratum_lonely[strat$snum == strat$snum[strat$stype == "H"][1]] <- "L"
clus1 <- apiclus1[, c(keep, "fpc")]
clus1$schwide_yes <- as.numeric(clus1$sch.wide == "Yes")
clus2 <- apiclus2[, c(keep, "fpc1", "fpc2")]
write.csv(strat, file.path(out, "survey_apistrat.csv"), row.names = FALSE)
write.csv(clus1, file.path(out, "survey_apiclus1.csv"), row.names = FALSE)
write.csv(clus2, file.path(out, "survey_apiclus2.csv"), row.names = FALSE)

designs <- list(
  strat = list(data = "survey_apistrat.csv", weight = "pw", strata = "stype", cluster = NULL, fpc = "fpc",
               r = quote(svydesign(id = ~1, strata = ~stype, weights = ~pw, fpc = ~fpc, data = strat))),
  strat_nofpc = list(data = "survey_apistrat.csv", weight = "pw", strata = "stype", cluster = NULL, fpc = NULL,
               r = quote(svydesign(id = ~1, strata = ~stype, weights = ~pw, data = strat))),
  clus1 = list(data = "survey_apiclus1.csv", weight = "pw", strata = NULL, cluster = "dnum", fpc = "fpc",
               r = quote(svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = clus1))),
  clus1_nofpc = list(data = "survey_apiclus1.csv", weight = "pw", strata = NULL, cluster = "dnum", fpc = NULL,
               r = quote(svydesign(id = ~dnum, weights = ~pw, data = clus1))),
  clus2 = list(data = "survey_apiclus2.csv", weight = "pw", strata = NULL, cluster = "dnum", fpc = NULL,
               r = quote(svydesign(id = ~dnum + snum, weights = ~pw, data = clus2))),
  lonely = list(data = "survey_apistrat.csv", weight = "pw", strata = "stratum_lonely", cluster = NULL,
               fpc = NULL, r = quote(svydesign(id = ~1, strata = ~stratum_lonely, weights = ~pw, data = strat)))
)

# one estimate: statistic in mean/total/proportion/ratio
estimate_case <- function(id, dname, statistic, y, denominator = NULL, domain = NULL, lonely = "fail") {
  d <- designs[[dname]]
  options(survey.lonely.psu = lonely)
  des <- eval(d$r)
  dcall <- paste(deparse(d$r, width.cutoff = 500), collapse = "")
  if (!is.null(domain)) {
    des <- eval(bquote(subset(des, .(as.name(domain$column)) == .(domain$value))))
    dcall <- sprintf("subset(%s, %s == \"%s\")", dcall, domain$column, domain$value)
  }
  f <- as.formula(paste0("~", y))
  if (statistic %in% c("mean", "proportion")) {
    est <- svymean(f, des, deff = TRUE, na.rm = TRUE)
    estr <- svymean(f, des, deff = "replace", na.rm = TRUE)
    rc <- sprintf("svymean(~%s, %s, deff = TRUE, na.rm = TRUE)", y, dcall)
  } else if (statistic == "total") {
    est <- svytotal(f, des, deff = TRUE, na.rm = TRUE)
    estr <- svytotal(f, des, deff = "replace", na.rm = TRUE)
    rc <- sprintf("svytotal(~%s, %s, deff = TRUE, na.rm = TRUE)", y, dcall)
  } else {
    g <- as.formula(paste0("~", denominator))
    est <- svyratio(f, g, des, deff = TRUE, na.rm = TRUE)
    estr <- svyratio(f, g, des, deff = "replace", na.rm = TRUE)
    rc <- sprintf("svyratio(~%s, ~%s, %s, deff = TRUE, na.rm = TRUE)", y, denominator, dcall)
  }
  df <- degf(des)
  if (statistic == "ratio") {
    e <- as.numeric(coef(est)); v <- as.numeric(est$var)
    ci <- as.numeric(confint(est, df = df)); ciz <- as.numeric(confint(est))
  } else {
    e <- as.numeric(coef(est)); v <- as.numeric(vcov(est))
    ci <- as.numeric(confint(est, df = df)); ciz <- as.numeric(confint(est))
  }
  options(survey.lonely.psu = "fail")
  list(id = id, design = dname, data = d$data, weight = d$weight, strata = d$strata, cluster = d$cluster,
       fpc = d$fpc, statistic = statistic, y = y, denominator = denominator, domain = domain,
       lonely_psu = lonely,
       r_call = paste0(if (lonely != "fail") sprintf("options(survey.lonely.psu = \"%s\"); ", lonely) else "", rc,
                       "; confint(est, df = degf(design))"),
       estimate = e, var = v, se = sqrt(v), deff = as.numeric(deff(est)), deff_replace = as.numeric(deff(estr)),
       df = df, ci_t95 = ci, ci_normal95 = ciz)
}

lin <- list(
  estimate_case("strat_mean_api00", "strat", "mean", "api00"),
  estimate_case("strat_total_enroll", "strat", "total", "enroll"),
  estimate_case("strat_ratio_api00_api99", "strat", "ratio", "api00", "api99"),
  estimate_case("strat_prop_schwide", "strat", "proportion", "schwide_yes"),
  estimate_case("strat_domain_mean", "strat", "mean", "api00", domain = list(column = "comp.imp", value = "Yes")),
  estimate_case("strat_domain_total", "strat", "total", "enroll", domain = list(column = "awards", value = "No")),
  estimate_case("strat_nofpc_mean", "strat_nofpc", "mean", "api00"),
  estimate_case("clus1_mean_api00", "clus1", "mean", "api00"),
  estimate_case("clus1_total_enroll", "clus1", "total", "enroll"),
  estimate_case("clus1_ratio", "clus1", "ratio", "api00", "api99"),
  estimate_case("clus1_prop_schwide", "clus1", "proportion", "schwide_yes"),
  estimate_case("clus1_domain_mean", "clus1", "mean", "api00", domain = list(column = "stype", value = "H")),
  estimate_case("clus1_domain_ratio", "clus1", "ratio", "api00", "api99", domain = list(column = "stype", value = "M")),
  estimate_case("clus1_nofpc_mean", "clus1_nofpc", "mean", "api00"),
  estimate_case("clus2_mean_api00", "clus2", "mean", "api00"),
  estimate_case("clus2_total_enroll_na", "clus2", "total", "enroll"),
  estimate_case("clus2_ratio", "clus2", "ratio", "api00", "api99"),
  estimate_case("clus2_domain_mean", "clus2", "mean", "api00", domain = list(column = "stype", value = "E")),
  estimate_case("lonely_certainty", "lonely", "mean", "api00", lonely = "certainty"),
  estimate_case("lonely_remove", "lonely", "mean", "api00", lonely = "remove"),
  estimate_case("lonely_adjust", "lonely", "mean", "api00", lonely = "adjust"),
  estimate_case("lonely_average", "lonely", "mean", "api00", lonely = "average"),
  estimate_case("lonely_adjust_total", "lonely", "total", "enroll", lonely = "adjust")
)
write_json(list(meta = meta(1e-8, paste(
  "Linearization (Taylor) SEs of survey.design2 objects; ci_t95 = confint(est, df = degf(design)),",
  "ci_normal95 = confint(est) (df = Inf, R's default). deff = deff=TRUE (SRS without replacement),",
  "deff_replace = deff='replace'. apiclus2 is a two-stage design without fpc: R uses the",
  "with-replacement first-stage (ultimate cluster) variance."), lin), cases = lin),
  file.path(out, "survey_linearization.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null")

# ---- replicate designs ---------------------------------------------------------------------------
write_repw <- function(name, rep) {
  w <- weights(rep, type = "analysis")
  m <- formatC(as.matrix(w), digits = 17, format = "g")
  con <- gzfile(file.path(out, sprintf("survey_repw_%s.csv.gz", name)), "w")
  write.table(m, con, sep = ",", row.names = FALSE, col.names = FALSE, quote = FALSE)
  close(con)
  sprintf("survey_repw_%s.csv.gz", name)
}
rep_case <- function(name, dname, type, seed, mse) {
  d <- designs[[dname]]
  des <- eval(d$r)
  set.seed(seed)
  rep <- if (type %in% c("bootstrap", "subbootstrap")) as.svrepdesign(des, type = type, replicates = 50, mse = mse)
         else as.svrepdesign(des, type = type, mse = mse)
  file <- write_repw(name, rep)
  dom_var <- if (dname == "strat") "comp.imp" else "stype"
  dom_val <- if (dname == "strat") "Yes" else "E"
  sub <- eval(bquote(subset(rep, .(as.name(dom_var)) == .(dom_val))))
  stats <- list(
    mean_api00 = svymean(~api00, rep), total_enroll = svytotal(~enroll, rep),
    ratio_api00_api99 = svyratio(~api00, ~api99, rep), domain_mean_api00 = svymean(~api00, sub))
  res <- lapply(names(stats), function(s) {
    est <- stats[[s]]
    if (inherits(est, "svyratio")) list(statistic = s, estimate = as.numeric(coef(est)), var = as.numeric(est$var))
    else list(statistic = s, estimate = as.numeric(coef(est)), var = as.numeric(vcov(est)))
  })
  list(id = name, design = dname, data = d$data, weight = d$weight, type = type, mse = mse, seed = seed,
       replicates_file = file, scale = rep$scale, rscales = as.numeric(rep$rscales),
       degf = degf(rep), domain = list(column = dom_var, value = dom_val),
       r_call = sprintf("set.seed(%d); rep <- as.svrepdesign(%s, type = \"%s\"%s, mse = %s); svymean(~api00, rep); svytotal(~enroll, rep); svyratio(~api00, ~api99, rep); svymean(~api00, subset(rep, %s == \"%s\"))",
                        seed, paste(deparse(d$r, width.cutoff = 500), collapse = ""), type,
                        if (type %in% c("bootstrap", "subbootstrap")) ", replicates = 50" else "", mse,
                        dom_var, dom_val),
       results = res)
}
reps <- list(
  rep_case("clus1_jk1", "clus1", "JK1", 1, FALSE),
  rep_case("clus1_jk1_mse", "clus1", "JK1", 1, TRUE),
  rep_case("clus1_boot", "clus1", "bootstrap", 2, FALSE),
  rep_case("clus1_subboot_mse", "clus1", "subbootstrap", 3, TRUE),
  rep_case("strat_jkn", "strat", "JKn", 4, FALSE),
  rep_case("strat_boot_mse", "strat", "bootstrap", 5, TRUE),
  rep_case("strat_subboot", "strat", "subbootstrap", 6, FALSE)
)
write_json(list(meta = meta(1e-10, paste(
  "Replicate-weight variances: v = scale * sum_r rscales_r (theta_r - c)^2, c = mean of replicates",
  "(mse = FALSE) or the full-sample estimate (mse = TRUE). The analysis (combined) replicate weights",
  "R generated are stored in replicates_file, one column per replicate, rows in data-file order."), reps),
  cases = reps), file.path(out, "survey_replicate.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE,
  null = "null")

# ---- calibration ---------------------------------------------------------------------------------
pop_stype <- data.frame(stype = c("E", "H", "M"), Freq = c(4421, 755, 1018))
pop_schwide <- data.frame(sch.wide = c("No", "Yes"), Freq = c(1072, 5122))
api99_total <- sum(apipop$api99)
cal_case <- function(id, dname, method, rcall_design, des, margins, numeric_totals = NULL) {
  dom <- subset(des, comp.imp == "Yes")
  est <- list(mean_api00 = svymean(~api00, des), total_enroll = svytotal(~enroll, des),
              ratio_api00_api99 = svyratio(~api00, ~api99, des),
              domain_mean_api00 = svymean(~api00, dom))
  res <- lapply(names(est), function(s) {
    e <- est[[s]]
    if (inherits(e, "svyratio")) list(statistic = s, estimate = as.numeric(coef(e)), var = as.numeric(e$var))
    else list(statistic = s, estimate = as.numeric(coef(e)), var = as.numeric(vcov(e)))
  })
  d <- designs[[dname]]
  list(id = id, design = dname, data = d$data, weight = d$weight, strata = d$strata, cluster = d$cluster,
       fpc = d$fpc, method = method, margins = margins, numeric_totals = numeric_totals,
       domain = list(column = "comp.imp", value = "Yes"), r_call = rcall_design,
       weights = as.numeric(weights(des)), degf = degf(des), results = res)
}
m_stype <- list(E = 4421, H = 755, M = 1018)
m_schwide <- list(No = 1072, Yes = 5122)
dclus1 <- eval(designs$clus1$r)
dstrat <- eval(designs$strat$r)
cals <- list(
  cal_case("clus1_poststratify", "clus1", "poststratify",
           "postStratify(dclus1, ~stype, data.frame(stype = c('E','H','M'), Freq = c(4421, 755, 1018)))",
           postStratify(dclus1, ~stype, pop_stype), list(stype = m_stype)),
  cal_case("clus1_rake", "clus1", "rake",
           "rake(dclus1, list(~stype, ~sch.wide), list(pop_stype, pop_schwide), control = list(maxit = 200, epsilon = 1e-13))",
           rake(dclus1, list(~stype, ~sch.wide), list(pop_stype, pop_schwide),
                control = list(maxit = 200, epsilon = 1e-13)),
           list(stype = m_stype, sch.wide = m_schwide)),
  cal_case("strat_rake", "strat", "rake",
           "rake(dstrat, list(~stype, ~sch.wide), list(pop_stype, pop_schwide), control = list(maxit = 200, epsilon = 1e-13))",
           rake(dstrat, list(~stype, ~sch.wide), list(pop_stype, pop_schwide),
                control = list(maxit = 200, epsilon = 1e-13)),
           list(stype = m_stype, sch.wide = m_schwide)),
  cal_case("clus1_calibrate_linear", "clus1", "linear",
           "calibrate(dclus1, ~stype + sch.wide, c(6194, 755, 1018, 5122), calfun = 'linear')",
           calibrate(dclus1, ~stype + sch.wide, c(6194, 755, 1018, 5122), calfun = "linear"),
           list(stype = m_stype, sch.wide = m_schwide)),
  cal_case("clus1_calibrate_raking", "clus1", "raking",
           "calibrate(dclus1, ~stype + sch.wide, c(6194, 755, 1018, 5122), calfun = 'raking', epsilon = 1e-13, maxit = 100)",
           calibrate(dclus1, ~stype + sch.wide, c(6194, 755, 1018, 5122), calfun = "raking",
                     epsilon = 1e-13, maxit = 100),
           list(stype = m_stype, sch.wide = m_schwide)),
  cal_case("clus1_calibrate_linear_numeric", "clus1", "linear",
           sprintf("calibrate(dclus1, ~stype + api99, c(6194, 755, 1018, %s), calfun = 'linear')", api99_total),
           calibrate(dclus1, ~stype + api99, c(6194, 755, 1018, api99_total), calfun = "linear"),
           list(stype = m_stype), list(api99 = api99_total)),
  cal_case("strat_calibrate_raking_numeric", "strat", "raking",
           sprintf("calibrate(dstrat, ~sch.wide + api99, c(6194, 5122, %s), calfun = 'raking', epsilon = 1e-13, maxit = 100)", api99_total),
           calibrate(dstrat, ~sch.wide + api99, c(6194, 5122, api99_total), calfun = "raking",
                     epsilon = 1e-13, maxit = 100),
           list(sch.wide = m_schwide), list(api99 = api99_total))
)
trims <- list(
  list(id = "strat_trim_strict", data = "survey_apistrat.csv", weight = "pw", lower = 16, upper = 42,
       redistribute = "equal",
       r_call = "weights(trimWeights(dstrat, lower = 16, upper = 42, strict = TRUE))",
       weights = as.numeric(weights(trimWeights(dstrat, lower = 16, upper = 42, strict = TRUE)))),
  list(id = "strat_trim_upper", data = "survey_apistrat.csv", weight = "pw", lower = NULL, upper = 35,
       redistribute = "equal",
       r_call = "weights(trimWeights(dstrat, upper = 35, strict = TRUE))",
       weights = as.numeric(weights(trimWeights(dstrat, upper = 35, strict = TRUE))))
)
write_json(list(meta = meta(1e-8, paste(
  "Calibrated weights and linearization SEs that account for calibration (survey::svyrecvar:",
  "postStratify residuals from post-stratum means; rake: 10 backfitting sweeps over the margins;",
  "calibrate: residuals of a weighted regression on the calibration model matrix). dclus1 =",
  "svydesign(id = ~dnum, weights = ~pw, fpc = ~fpc, data = apiclus1); dstrat = svydesign(id = ~1,",
  "strata = ~stype, weights = ~pw, fpc = ~fpc, data = apistrat); populations from apipop."), c(cals, trims)),
  cases = cals, trims = trims), file.path(out, "survey_calibration.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE,
  null = "null")
cat("done\n")
