# Reference values for cips_stats.claims (tests/test_claims_reference.py).
#
# Run from the repository root:   Rscript validation/r/claims.R
# Reads tests/reference/claims_cells.csv (the audited cells of cs.simulate(seed=1), written by
# python -m validation.make_claims_fixture_data) and writes tests/reference/claims_reference.json
# with the meta header (calls, R and package versions, date, tolerances).
#
# Per respondent group and rule (improved_point, improved_fdr):
#   mantelhaen.test(2 x 2 x country, correct = FALSE)   Cochran-Mantel-Haenszel and the MH odds ratio
#   fisher.test(2 x 2 pooled)                            p-value (R's OR is the conditional MLE: not compared)
#   geepack::geeglm(improved ~ supported, id = country, binomial, corstr = exchangeable / independence)
#   lme4::glmer(improved ~ supported + (1 | country), binomial, nAGQ = 30)
# Per group, on the change itself:
#   t.test(estimate ~ supported, var.equal = FALSE)      Welch
#   lm(estimate ~ supported + factor(country)), sandwich::vcovCL(type = "HC1", cluster = ~country),
#     lmtest::coeftest(df = G - 1)                        difference in differences
#   the same with the centred baseline (ANCOVA), and lm(baseline ~ supported + factor(country)).

suppressPackageStartupMessages({
  library(jsonlite); library(geepack); library(lme4); library(sandwich); library(lmtest)
})

out_dir <- file.path("tests", "reference")
cells <- read.csv(file.path(out_dir, "claims_cells.csv"), stringsAsFactors = FALSE)

pkgs <- c("geepack", "lme4", "sandwich", "lmtest", "jsonlite")
meta <- list(
  generated_by = "validation/r/claims.R",
  input = "tests/reference/claims_cells.csv",
  r_version = R.version.string,
  packages = setNames(lapply(pkgs, function(p) as.character(packageVersion(p))), pkgs),
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z", tz = "UTC"),
  call = list(
    cmh = "mantelhaen.test(table(factor(supported, c(1, 0)), factor(improved, c(1, 0)), country), correct = FALSE)",
    fisher = "fisher.test(table(factor(supported, c(1, 0)), factor(improved, c(1, 0))))",
    gee = "geeglm(improved ~ supported, id = country, family = binomial, corstr = 'exchangeable' | 'independence')",
    glmer = "glmer(improved ~ supported + (1 | country), family = binomial, nAGQ = 30)",
    welch = "t.test(estimate[supported == 1], estimate[supported == 0], var.equal = FALSE)",
    did = "coeftest(lm(estimate ~ supported + factor(country)), vcovCL(fit, cluster = ~country, type = 'HC1'), df = G - 1)",
    ancova = "the same with + I(baseline - mean(baseline))",
    baseline = "the same with baseline as the response"
  ),
  tolerance = list(cmh = 1e-8, fisher = 1e-8, welch = 1e-8, gee_coef = 1e-5, gee_se = 1e-4,
                   glmer_coef = 1e-4, glmer_se = 1e-4, ols = 1e-8)
)

cases <- list()
for (g in sort(unique(cells$group))) {
  d <- cells[cells$group == g, ]
  d <- d[order(d$country), ]
  d$country <- factor(d$country)
  G <- nlevels(d$country)
  for (rule in c("point", "fdr")) {
    d$improved <- d[[paste0("improved_", rule)]]
    tab <- table(factor(d$supported, c(1, 0)), factor(d$improved, c(1, 0)), d$country)
    cmh <- mantelhaen.test(tab, correct = FALSE)
    fis <- fisher.test(table(factor(d$supported, c(1, 0)), factor(d$improved, c(1, 0))))
    gee_ex <- geeglm(improved ~ supported, id = country, data = d, family = binomial, corstr = "exchangeable")
    gee_in <- geeglm(improved ~ supported, id = country, data = d, family = binomial, corstr = "independence")
    sg_ex <- summary(gee_ex)$coefficients
    sg_in <- summary(gee_in)$coefficients
    gm <- glmer(improved ~ supported + (1 | country), data = d, family = binomial, nAGQ = 30)
    cg <- summary(gm)$coefficients
    cases[[paste(g, rule, sep = "/")]] <- list(
      group = g, rule = rule,
      cmh_statistic = unname(cmh$statistic), cmh_p = cmh$p.value, cmh_or = unname(cmh$estimate),
      cmh_or_ci = as.numeric(cmh$conf.int),
      fisher_p = fis$p.value,
      gee_exchangeable_coef = sg_ex["supported", "Estimate"], gee_exchangeable_se = sg_ex["supported", "Std.err"],
      gee_exchangeable_p = sg_ex["supported", "Pr(>|W|)"], gee_exchangeable_alpha = unname(gee_ex$geese$alpha),
      gee_independence_coef = sg_in["supported", "Estimate"], gee_independence_se = sg_in["supported", "Std.err"],
      gee_independence_p = sg_in["supported", "Pr(>|W|)"],
      glmer_coef = cg["supported", "Estimate"], glmer_se = cg["supported", "Std. Error"],
      glmer_p = cg["supported", "Pr(>|z|)"], glmer_sigma = attr(VarCorr(gm)$country, "stddev")[[1]]
    )
  }
  wt <- t.test(d$estimate[d$supported == 1], d$estimate[d$supported == 0], var.equal = FALSE)
  did <- lm(estimate ~ supported + factor(country), data = d)
  ct_did <- coeftest(did, vcov. = vcovCL(did, cluster = ~country, type = "HC1"), df = G - 1)
  d$bc <- d$baseline - mean(d$baseline)
  anc <- lm(estimate ~ supported + bc + factor(country), data = d)
  ct_anc <- coeftest(anc, vcov. = vcovCL(anc, cluster = ~country, type = "HC1"), df = G - 1)
  bl <- lm(baseline ~ supported + factor(country), data = d)
  ct_bl <- coeftest(bl, vcov. = vcovCL(bl, cluster = ~country, type = "HC1"), df = G - 1)
  cases[[paste(g, "change", sep = "/")]] <- list(
    group = g, rule = "change",
    welch_t = unname(wt$statistic), welch_df = unname(wt$parameter), welch_p = wt$p.value,
    welch_ci = as.numeric(wt$conf.int),
    did_coef = ct_did["supported", 1], did_se = ct_did["supported", 2], did_p = ct_did["supported", 4],
    ancova_coef = ct_anc["supported", 1], ancova_se = ct_anc["supported", 2], ancova_p = ct_anc["supported", 4],
    ancova_slope = ct_anc["bc", 1],
    baseline_coef = ct_bl["supported", 1], baseline_se = ct_bl["supported", 2], baseline_p = ct_bl["supported", 4]
  )
}

write_json(list(meta = meta, cases = unname(cases)), file.path(out_dir, "claims_reference.json"),
           auto_unbox = TRUE, digits = NA, pretty = TRUE)
cat("wrote", file.path(out_dir, "claims_reference.json"), "\n")
