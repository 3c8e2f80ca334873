/*
 * `airlock doctor --stack VERSION [--platforms LIST] [--kibana VERSION]
 * [--endpoint VERSION] [--json]`: from the cache alone (no network), what an
 * air-gapped Stack of that version would miss, and for each missing thing
 * which client fails and how.  Exit 0 only when nothing is missing.
 */
#ifndef AIRLOCK_PROXY_DOCTOR_H
#define AIRLOCK_PROXY_DOCTOR_H

/* argv[0] is "doctor". Returns a process exit code (0 ready, 1 something missing, 2 usage or config). */
int doctor_main(int argc, char **argv);

#endif
