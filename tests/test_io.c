#include "../genmod.h"
#include "test.h"
void tests_io(void) {}
