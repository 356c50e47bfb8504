# The one `meta` header of every reference fixture (checked by tests/test_fixture_meta.py).
#
#   source(file.path("validation", "r", "meta.R"))
#   write_fixture(list(...values...), "tests/reference/x.json",
#                 generated_by = "validation/r/x.R", call = "cfa(...)" or list(name = "call", ...),
#                 packages = c("lavaan"), tolerance = 1e-6 or list(quantity = 1e-6))

fixture_meta <- function(generated_by, call, packages, tolerance, ...) {
  list(
    generated_by = generated_by,
    call = call,
    r_version = R.version.string,
    packages = setNames(lapply(packages, function(p) as.character(packageVersion(p))), packages),
    date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z", tz = "UTC"),
    tolerance = tolerance,
    ...
  )
}

write_fixture <- function(values, path, generated_by, call, packages, tolerance, ...) {
  doc <- c(list(meta = fixture_meta(generated_by, call, packages, tolerance, ...)), values)
  jsonlite::write_json(doc, path, digits = NA, auto_unbox = TRUE, pretty = TRUE)
  invisible(path)
}
