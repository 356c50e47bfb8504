# Reference values for issue 10 (factor part): robust fit measures of WLSMV (cat-ML, Savalei 2021),
# multi-group WLSMV with unequal group sizes, a negative scaled chi-square difference in an ordinal
# invariance ladder, and a structural model with defined parameters (sem()).
#
# Run from the repository root:  Rscript validation/r/factor_issue10.R
# Writes tests/reference/{verbagg_wide.csv, political_democracy.csv} (public data from lme4 and lavaan)
# and tests/reference/{wlsmv_bfi_ne_robust, wlsmv_bfi_education_groups, invariance_verbagg_negative,
# sem_political_democracy}.json, each with a `meta` header: generator, call, R version, package
# versions, date, tolerance.
suppressMessages({
  library(lavaan)
  library(psych)
  library(lme4)
  library(jsonlite)
})

out_dir <- "tests/reference"
packages <- list(lavaan = as.character(packageVersion("lavaan")),
                 psych = as.character(packageVersion("psych")),
                 lme4 = as.character(packageVersion("lme4")),
                 jsonlite = as.character(packageVersion("jsonlite")))
source(file.path("validation", "r", "meta.R"))   # the one `meta` header (tests/test_fixture_meta.py)
write_fixture <- function(name, call, tolerance, values) {
  meta <- fixture_meta("validation/r/factor_issue10.R", call, names(packages), tolerance)
  writeLines(toJSON(c(list(meta = meta), values), digits = NA, auto_unbox = TRUE, matrix = "rowmajor",
                    na = "null"), file.path(out_dir, paste0(name, ".json")))
}
fm_list <- function(fit) as.list(fitMeasures(fit))
pe_list <- function(fit) {
  pe <- parameterEstimates(fit)
  pe[, intersect(c("lhs", "op", "rhs", "group", "label", "est", "se", "z", "pvalue"), names(pe))]
}

bfi <- psych::bfi
# ---------------------------------------------------------------- (1) robust fit measures, WLSMV
ne_items <- c(paste0("N", 1:5), paste0("E", 1:5))
ne_model <- "N =~ N1 + N2 + N3 + N4 + N5\nE =~ E1 + E2 + E3 + E4 + E5"
d_ne <- bfi[, c(ne_items, "gender")]
f1 <- cfa(ne_model, d_ne, ordered = ne_items, estimator = "WLSMV")
f2 <- cfa(ne_model, d_ne, ordered = ne_items, estimator = "WLSMV", group = "gender")
write_fixture("wlsmv_bfi_ne_robust",
  list(single = "cfa(ne_model, bfi[, c(N1:N5, E1:E5)], ordered = items, estimator = 'WLSMV')",
       groups = "cfa(ne_model, bfi, ordered = items, estimator = 'WLSMV', group = 'gender')"),
  list(fit = 1e-4),
  list(model = ne_model, items = ne_items, single = fm_list(f1), groups = fm_list(f2)))

# ---------------------------------------------------------------- (2) unequal groups, cross-group constraints
o_items <- paste0("O", 1:5)
d_o <- subset(bfi, education %in% c(1, 5))[, c(o_items, "education")]
fo <- cfa("O =~ O1 + O2 + O3 + O4 + O5", d_o, ordered = TRUE, estimator = "WLSMV", group = "education",
          group.equal = c("loadings", "thresholds"))
write_fixture("wlsmv_bfi_education_groups",
  "cfa('O =~ O1+O2+O3+O4+O5', subset(bfi, education %in% c(1,5)), ordered=TRUE, estimator='WLSMV', group='education', group.equal=c('loadings','thresholds'))",
  list(est = 1e-4, se = 1e-4, fit = 1e-4),
  list(nobs = lavInspect(fo, "nobs"), group_labels = lavInspect(fo, "group.label"),
       fit = fm_list(fo), parameters = pe_list(fo)))
write.csv(d_o, file.path(out_dir, "bfi_education_o.csv"), row.names = FALSE, na = "")

# ---------------------------------------------------------------- (3) negative scaled difference
data(VerbAgg, package = "lme4")
w <- reshape(VerbAgg[, c("id", "item", "resp", "Gender")], idvar = c("id", "Gender"), timevar = "item",
             direction = "wide")
names(w) <- sub("resp\\.", "", names(w))
va_items <- setdiff(names(w), c("id", "Gender"))
for (i in va_items) w[[i]] <- as.integer(w[[i]])
nm <- make.names(va_items)
names(w)[match(va_items, names(w))] <- nm
va_model <- paste0("want =~ ", paste(nm[1:12], collapse = " + "), "\ndo =~ ", paste(nm[13:24], collapse = " + "))
write.csv(w[, c("Gender", nm)], file.path(out_dir, "verbagg_wide.csv"), row.names = FALSE)
va_m <- cfa(va_model, w, ordered = TRUE, estimator = "WLSMV", group = "Gender", group.equal = "loadings")
va_s <- cfa(va_model, w, ordered = TRUE, estimator = "WLSMV", group = "Gender",
            group.equal = c("loadings", "thresholds"))
lrt_warning <- NULL
lrt <- withCallingHandlers(lavTestLRT(va_s, va_m),
                           warning = function(w) { lrt_warning <<- conditionMessage(w); invokeRestart("muffleWarning") })
write_fixture("invariance_verbagg_negative",
  "lavTestLRT(cfa(va_model, w, ordered=TRUE, estimator='WLSMV', group='Gender', group.equal=c('loadings','thresholds')), cfa(..., group.equal='loadings'))",
  list(chisq = 1e-3, diff = 1e-3),
  list(model = va_model, metric = fm_list(va_m)[c("chisq", "df", "chisq.scaled")],
       scalar = fm_list(va_s)[c("chisq", "df", "chisq.scaled")],
       delta_chisq = lrt[["Chisq diff"]][2], delta_df = lrt[["Df diff"]][2], p_value = lrt[["Pr(>Chisq)"]][2],
       warning = lrt_warning))

# ---------------------------------------------------------------- (4) structural model, defined parameters
data(PoliticalDemocracy, package = "lavaan")
write.csv(PoliticalDemocracy, file.path(out_dir, "political_democracy.csv"), row.names = FALSE)
pd_model <- "
  ind60 =~ x1 + x2 + x3
  dem60 =~ y1 + a*y2 + b*y3 + c*y4
  dem65 =~ y5 + a*y6 + b*y7 + c*y8
  dem60 ~ g1*ind60
  dem65 ~ g2*ind60 + g3*dem60
  y1 ~~ y5
  y2 ~~ y4 + y6
  y3 ~~ y7
  y4 ~~ y8
  y6 ~~ y8
  indirect := g1*g3
  total := g2 + g1*g3
"
pd <- sem(pd_model, data = PoliticalDemocracy)
pd_mlr <- sem(pd_model, data = PoliticalDemocracy, estimator = "MLR")
ss <- standardizedSolution(pd)
write_fixture("sem_political_democracy",
  list(ml = "sem(pd_model, data = PoliticalDemocracy)", mlr = "sem(pd_model, data = PoliticalDemocracy, estimator = 'MLR')"),
  list(est = 1e-4, se = 1e-4, fit = 1e-4),
  list(model = pd_model, fit = fm_list(pd), parameters = pe_list(pd), std_all = ss$est.std,
       fit_mlr = fm_list(pd_mlr), parameters_mlr = pe_list(pd_mlr)))
