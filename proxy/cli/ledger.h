/* airlock ledger: the ledger of custody, printed and checked. */
#ifndef AIRLOCK_PROXY_LEDGER_H
#define AIRLOCK_PROXY_LEDGER_H

/* argv[0] is "ledger". Returns a process exit code. */
int ledger_main(int argc, char **argv);

#endif
