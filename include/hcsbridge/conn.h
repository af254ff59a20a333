/* hcsbridge — guest connection, containers and processes (in progress). */
#ifndef HCSBRIDGE_CONN_H
#define HCSBRIDGE_CONN_H
#include <hcsbridge/bridge.h>
#endif
