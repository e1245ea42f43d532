-- Settings of an analyst's connection to the read-only snapshot (returns nothing): times shown in the site's zone
-- $timezone, no file access (no COPY ... TO, ATTACH or reading files) and the settings locked so no query undoes them.
SET TimeZone = $timezone;
SET enable_external_access = false;
SET lock_configuration = true;
