# Reference values for cips_stats.reliability (tests/test_reliability.py).
#
# Run from the repository root:   Rscript validation/r/reliability.R
# Writes tests/reference/reliability_bfi.csv (psych's bfi items + a deterministic weight) and
# tests/reference/reliability_bfi.json (values, the exact calls, R/package versions, date, tolerances).
#
# Data: psych::bfi (2800 x 25 Likert items, 1..6, public). Reverse-keyed items as psych's
# documentation keys them (bfi.keys): A1, C4, C5, E1, E2, O2, O5; reversed here as 7 - x, before any
# call, so that every program sees the same recoded items (psych's keys= would do the same: min+max = 7).
# Weight w = 0.5 + (age %% 4) / 2, a deterministic positive weight for the design-weighted check.

suppressPackageStartupMessages({
  library(psych); library(lavaan); library(semTools); library(survey); library(jsonlite)
})

out_dir <- file.path("tests", "reference")
scales <- list(
  agree = paste0("A", 1:5), conscientious = paste0("C", 1:5), extraversion = paste0("E", 1:5),
  neuroticism = paste0("N", 1:5), openness = paste0("O", 1:5)
)
reverse <- c("A1", "C4", "C5", "E1", "E2", "O2", "O5")
items <- unlist(scales, use.names = FALSE)

d <- bfi[, items]
for (v in reverse) d[[v]] <- 7 - d[[v]]
d$w <- 0.5 + (bfi$age %% 4) / 2

csv <- bfi[, items]  # the CSV keeps the raw codes; Python reverses the same items as 7 - x
csv$age <- bfi$age
csv$w <- d$w
write.csv(csv, file.path(out_dir, "reliability_bfi.csv"), row.names = FALSE, na = "")

z <- qnorm(0.975)

alpha_ref <- function(x) {
  a <- psych::alpha(x, warnings = FALSE)   # use = "pairwise" (psych's default)
  tot <- a$total
  list(
    nsub = nrow(x),
    raw_alpha = tot$raw_alpha, std_alpha = tot$std.alpha, average_r = tot$average_r,
    ase = tot$ase, total_mean = tot$mean, total_sd = tot$sd,
    feldt = c(a$feldt$lower.ci[[1]], a$feldt$upper.ci[[1]]),
    duhachek = c(tot$raw_alpha - z * tot$ase, tot$raw_alpha + z * tot$ase),
    items = list(
      item = rownames(a$item.stats), n = a$item.stats$n, raw_r = a$item.stats$raw.r,
      std_r = a$item.stats$std.r, r_drop = a$item.stats$r.drop, mean = a$item.stats$mean,
      sd = a$item.stats$sd, alpha_if_dropped = a$alpha.drop$raw_alpha,
      std_alpha_if_dropped = a$alpha.drop$std.alpha
    )
  )
}

omega_ref <- function(x, missing) {
  model <- paste("f =~", paste(names(x), collapse = " + "))
  fit <- lavaan::cfa(model, data = x, std.lv = TRUE, missing = missing)
  pe <- parameterEstimates(fit)
  list(
    lavaan_call = sprintf("cfa('%s', data = x, std.lv = TRUE, missing = '%s')", model, missing),
    omega_observed = unname(compRelSEM(fit, obs.var = TRUE)[["f"]]),
    omega_model = unname(compRelSEM(fit, obs.var = FALSE)[["f"]]),
    loadings = pe$est[pe$op == "=~"],
    residuals = pe$est[pe$op == "~~" & pe$lhs == pe$rhs & pe$lhs != "f"],
    converged = lavInspect(fit, "converged")
  )
}

# Normal-theory delta-method (Wald) SE of the model-implied omega, from lavaan's := machinery
# (expected information, complete data).
omega_wald_ref <- function(x) {
  k <- ncol(x)
  model <- paste0("f =~ ", paste0("l", 1:k, "*", names(x), collapse = " + "), "\n",
                  paste0(names(x), " ~~ t", 1:k, "*", names(x), collapse = "\n"), "\n",
                  "omega := (", paste0("l", 1:k, collapse = " + "), ")^2 / ((",
                  paste0("l", 1:k, collapse = " + "), ")^2 + ", paste0("t", 1:k, collapse = " + "), ")")
  fit <- lavaan::cfa(model, data = x, std.lv = TRUE, missing = "listwise", information = "expected")
  pe <- parameterEstimates(fit)
  row <- pe[pe$op == ":=" & pe$lhs == "omega", ]
  list(call = "cfa(model with omega := (sum l)^2 / ((sum l)^2 + sum theta), data = x, std.lv = TRUE, missing = 'listwise', information = 'expected')",
       omega = row$est, se = row$se, n = lavInspect(fit, "nobs"))
}

ordinal_ref <- function(x) {
  pc <- psych::polychoric(x)          # pairwise, global thresholds (psych's default)
  rho <- pc$rho
  a <- psych::alpha(rho, warnings = FALSE)
  lc <- lavaan::lavCor(x, ordered = names(x), missing = "pairwise")
  fit <- lavaan::cfa(paste("f =~", paste(names(x), collapse = " + ")), sample.cov = unclass(lc),
                     sample.nobs = nrow(x), std.lv = TRUE)
  list(
    psych_rho = unclass(rho), psych_alpha = a$total$raw_alpha,
    lavaan_rho = unclass(lc),
    lavaan_alpha = psych::alpha(unclass(lc), warnings = FALSE)$total$raw_alpha,
    lavaan_omega_model = unname(compRelSEM(fit, obs.var = FALSE)[["f"]]),
    lavaan_omega_observed = unname(compRelSEM(fit, obs.var = TRUE)[["f"]])
  )
}

# psych's check.keys: items loading negatively on the first principal component are reversed
# (max + min - x over all items); run on the raw, un-reversed codes.
check_keys_ref <- function(raw) {
  a <- psych::alpha(raw, check.keys = TRUE, warnings = FALSE)
  list(call = "psych::alpha(raw_x, check.keys = TRUE, warnings = FALSE)",
       keys = a$keys[[1]], raw_alpha = a$total$raw_alpha, std_alpha = a$total$std.alpha,
       feldt = c(a$feldt$lower.ci[[1]], a$feldt$upper.ci[[1]]),
       item_names = rownames(a$item.stats), r_drop = a$item.stats$r.drop)
}

# Green & Yang (2009) categorical omega: compRelSEM(ord.scale = TRUE) on a one-factor WLSMV fit,
# beside the latent-response ("ordinal") omega of the same fit (ord.scale = FALSE).
categorical_ref <- function(x, missing) {
  model <- paste("f =~", paste(names(x), collapse = " + "))
  fit <- lavaan::cfa(model, data = x, ordered = TRUE, std.lv = TRUE, missing = missing)
  list(
    call = sprintf("compRelSEM(cfa('%s', data = x, ordered = TRUE, std.lv = TRUE, missing = '%s'), ord.scale = TRUE, obs.var = TRUE|FALSE)", model, missing),
    n = lavInspect(fit, "nobs"),
    omega_cat_observed = unname(compRelSEM(fit, ord.scale = TRUE, obs.var = TRUE)[["f"]]),
    omega_cat_model = unname(compRelSEM(fit, ord.scale = TRUE, obs.var = FALSE)[["f"]]),
    omega_latent_observed = unname(compRelSEM(fit, ord.scale = FALSE, obs.var = TRUE)[["f"]]),
    omega_latent_model = unname(compRelSEM(fit, ord.scale = FALSE, obs.var = FALSE)[["f"]])
  )
}

weighted_ref <- function(x, w) {
  dd <- x; dd$w <- w
  des <- svydesign(ids = ~1, weights = ~w, data = dd)
  f <- as.formula(paste("~", paste(names(x), collapse = " + ")))
  unname(svycralpha(f, des, na.rm = TRUE))
}

res <- list()
for (s in names(scales)) {
  x <- d[, scales[[s]]]
  xl <- na.omit(x)
  res[[s]] <- list(
    items = scales[[s]],
    pairwise = alpha_ref(x),
    listwise = c(alpha_ref(as.data.frame(xl)), list(n_complete = nrow(xl))),
    omega_listwise = omega_ref(x, "listwise"),
    omega_pairwise = omega_ref(x, "pairwise"),
    omega_wald_listwise = omega_wald_ref(x),
    ordinal = ordinal_ref(x),
    check_keys = check_keys_ref(bfi[, scales[[s]]]),
    categorical_listwise = categorical_ref(x, "listwise"),
    categorical_pairwise = categorical_ref(x, "pairwise"),
    weighted_listwise_alpha = weighted_ref(x, d$w)
  )
}
# a two-item scale (alpha only; psych's item table is not defined for two items)
x2 <- d[, c("A1", "A2")]
a2 <- psych::alpha(x2, warnings = FALSE)
res[["two_items"]] <- list(items = c("A1", "A2"), raw_alpha = a2$total$raw_alpha,
                           std_alpha = a2$total$std.alpha, ase = a2$total$ase,
                           feldt = c(a2$feldt$lower.ci[[1]], a2$feldt$upper.ci[[1]]))

meta <- list(
  generated_by = "validation/r/reliability.R",
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z", tz = "UTC"),
  r_version = R.version.string,
  packages = list(psych = as.character(packageVersion("psych")),
                  lavaan = as.character(packageVersion("lavaan")),
                  semTools = as.character(packageVersion("semTools")),
                  survey = as.character(packageVersion("survey"))),
  data = "psych::bfi items, reverse-keyed A1 C4 C5 E1 E2 O2 O5 as 7 - x; w = 0.5 + (age %% 4)/2",
  call = list(
    alpha = "psych::alpha(x, warnings = FALSE)  # use = 'pairwise'; listwise: psych::alpha(na.omit(x))",
    feldt = "psych::alpha(x)$feldt (psych::alpha.ci with n.obs = nrow(x))",
    duhachek = "raw_alpha -/+ qnorm(0.975) * psych::alpha(x)$total$ase  (psych's print uses 1.96)",
    omega = "semTools::compRelSEM(lavaan::cfa('f =~ ...', data = x, std.lv = TRUE, missing = m), obs.var = TRUE|FALSE)",
    ordinal = "psych::alpha(psych::polychoric(x)$rho); lavaan::lavCor(x, ordered = names(x), missing = 'pairwise') then cfa(sample.cov = rho, sample.nobs = nrow(x), std.lv = TRUE) and compRelSEM",
    weighted = "survey::svycralpha(~items, svydesign(ids = ~1, weights = ~w, data = x), na.rm = TRUE)",
    check_keys = "psych::alpha(raw_x, check.keys = TRUE, warnings = FALSE) on the raw (un-reversed) bfi codes",
    categorical = "semTools::compRelSEM(lavaan::cfa('f =~ ...', data = x, ordered = TRUE, std.lv = TRUE, missing = m), ord.scale = TRUE|FALSE, obs.var = TRUE|FALSE)"
  ),
  tolerance = list(alpha_closed_form = 1e-8, omega = 1e-4, polychoric_based = 2e-3,
                   weighted_alpha = 1e-8, categorical_omega = 1e-4)
)
write_json(list(meta = meta, scales = res), file.path(out_dir, "reliability_bfi.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", file.path(out_dir, "reliability_bfi.json"), "\n")
