-- Settings of an analyst's connection to the Parquet views (returns nothing): times in the site's zone, file access only under the store's directory, settings locked.
SET TimeZone = $timezone;
SET allowed_directories = [$root];
SET enable_external_access = false;
SET lock_configuration = true;
