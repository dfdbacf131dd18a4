#include "textflag.h"

// func Addr(p unsafe.Pointer)
TEXT ·Addr(SB), NOSPLIT|NOFRAME, $0-8
	MOVD	p+0(FP), R0
	PRFM	(R0), PLDL1KEEP
	RET
