#!/bin/sh
# thread_safety_bites.sh CLANGXX SRC_DIR FIXTURE: passes only when clang rejects the fixture
# for both of its lock violations.
out=$("$1" -fsyntax-only -std=gnu++20 -Wthread-safety -Werror=thread-safety -I"$2" "$3" 2>&1) && {
  echo "clang accepted $3"
  exit 1
}
echo "$out" | grep -q "writing variable 'n_' requires holding mutex 'mu_'" || { echo "$out"; exit 1; }
echo "$out" | grep -q "calling function 'HelperLocked' requires holding mutex 'mu_'" || { echo "$out"; exit 1; }
echo "clang rejected both violations"
