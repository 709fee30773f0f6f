import torch,sys
V,H=201088,2880
d='cuda'
W=torch.randn(V,H,dtype=torch.bfloat16,device=d)
GB=2**30
def P(tag,base,n):
  torch.cuda.synchronize();a=torch.cuda.memory_allocated()-base;p=torch.cuda.max_memory_allocated()-base
  print(f"  {tag:10s} alloc {a/GB:7.3f} peak {p/GB:7.3f} GiB  peak/el {p/(n*V):6.2f}")
def native(lg,k,p,base,n):
  ls,li=lg.sort(dim=-1,descending=False);P('sort',base,n)
  km=ls.size(1)-k.to(torch.long);km=ls.gather(1,km.unsqueeze(1));km=ls<km
  ls.masked_fill_(km,-float('inf'))
  ps=ls.softmax(dim=-1);pss=torch.cumsum(ps,dim=-1,out=ps)
  pm=pss<=1-p.unsqueeze(1);pm[:,-1]=False
  ls.masked_fill_(pm,-float('inf'));P('topp',base,n)
  y=ls.scatter(dim=-1,index=li,src=ls);P('scatter',base,n)
  return y
def run(R,mode):
  hs=torch.randn(R,H,dtype=torch.bfloat16,device=d)
  torch.cuda.synchronize();torch.cuda.empty_cache();torch.cuda.reset_peak_memory_stats()
  base=torch.cuda.memory_allocated()
  print(mode,R)
  h=torch.rand_like(hs)
  logits=torch.nn.functional.linear(h,W);n=R;P('logits',base,n)
  t=lambda v:torch.full((n,),v,device=d)
  temp,tp,tk=t(0.5),t(0.9),t(V-1)
  x=logits.to(torch.float32);P('fp32',base,n)
  g=x.argmax(dim=-1).view(-1)
  x=x.div_(temp.unsqueeze(1))
  if mode=='native':
    y=native(x,tk,tp,base,n)
    pr=y.softmax(dim=-1,dtype=torch.float32)
    q=torch.empty_like(pr);q.exponential_()
    r=pr.div_(q).argmax(dim=-1).view(-1);P('sample',base,n)
  else:
    m=torch.empty_like(x);m.copy_(x);pr=torch.softmax(m,dim=-1);P('fi',base,n)
    r=pr.argmax(dim=-1)
  s=torch.where(temp<1e-5,g,r,out=g)
  P('END',base,n)
print(torch.__version__,torch.cuda.get_device_name())
for R in [1024,256,64]:
  run(R,'native')
run(1024,'fi')
